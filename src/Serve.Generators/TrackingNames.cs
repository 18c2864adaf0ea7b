namespace Serve.Generators
{
    /// <summary>The names of the generator's pipeline steps, so tests can assert that each one stays cached.</summary>
    public static class TrackingNames
    {
        /// <summary>Each <c>[Deployment]</c> target parsed into a model and its diagnostics.</summary>
        public const string Parse = "Serve.Parse";

        /// <summary>The diagnostics of each target.</summary>
        public const string Diagnostics = "Serve.Diagnostics";

        /// <summary>The models of targets that generate code.</summary>
        public const string Models = "Serve.Models";

        /// <summary>All handle names generated in the compilation, sorted.</summary>
        public const string HandleNames = "Serve.HandleNames";

        /// <summary>Models with handle-typed constructor parameters resolved.</summary>
        public const string Resolved = "Serve.Resolved";

        /// <summary>The manifest's entries, collected.</summary>
        public const string Manifest = "Serve.Manifest";

        /// <summary>Every deployment's handle declaration, collected for the duplicate-handle check.</summary>
        public const string HandleDeclarations = "Serve.HandleDeclarations";
    }
}
