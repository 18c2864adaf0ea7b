using System.Collections.Generic;
using Microsoft.CodeAnalysis;

namespace Serve.Generators
{
    /// <summary>
    /// Every rule the generator reports. Each is an error at the offending syntax (SERVE041, which only leaves out a
    /// graph builder, is a warning), and its message says what to write instead. New rules go into AnalyzerReleases.Unshipped.md too.
    /// </summary>
    internal static class DiagnosticDescriptors
    {
        private const string Category = "Serve";

        public static readonly DiagnosticDescriptor ClassNotPartial = Rule(
            "SERVE001",
            "Deployment class must be partial",
            "Deployment class '{0}' is not partial; the generator adds Bind(...) and its definition to it. Declare it as 'partial class {0}'.");

        public static readonly DiagnosticDescriptor ClassGeneric = Rule(
            "SERVE002",
            "Deployment class must not be generic",
            "Deployment class '{0}' is generic; Serve creates its replicas without knowing type arguments. Remove the type parameters and use concrete types.");

        public static readonly DiagnosticDescriptor ClassAbstract = Rule(
            "SERVE003",
            "Deployment class must not be abstract",
            "Deployment class '{0}' is abstract; Serve must create instances of it. Remove 'abstract', or mark a concrete partial class that derives from it [Deployment].");

        public static readonly DiagnosticDescriptor ClassStatic = Rule(
            "SERVE004",
            "Deployment class must not be static",
            "Deployment class '{0}' is static; Serve creates instances of a deployment class. Remove 'static', or put [Deployment] on its static methods to make function deployments.");

        public static readonly DiagnosticDescriptor ContainingTypeNotPartial = Rule(
            "SERVE005",
            "Type containing a deployment must be partial",
            "'{0}' contains the deployment '{1}' but is not partial; the generator adds members to '{1}' through it. Declare '{0}' as partial, or move '{1}' out of it.");

        public static readonly DiagnosticDescriptor ContainingTypeGeneric = Rule(
            "SERVE006",
            "Deployment must not be nested in a generic type",
            "'{0}' contains the deployment '{1}' but is generic, so the generated handle cannot name '{1}'. Move '{1}' to a non-generic type or to namespace level.");

        public static readonly DiagnosticDescriptor DeploymentInaccessible = Rule(
            "SERVE007",
            "Deployment must be internal or public",
            "Deployment '{0}' is {1}; its generated handle and manifest live at namespace level and must reach it. Make it internal or public.");

        public static readonly DiagnosticDescriptor NoPublicConstructor = Rule(
            "SERVE008",
            "Deployment class needs a public constructor",
            "Deployment class '{0}' has no public constructor; Serve creates each replica through one, and Bind(...) mirrors it. Add a public constructor (or a primary constructor on a public class).");

        public static readonly DiagnosticDescriptor ByReference = Rule(
            "SERVE009",
            "Deployment parameters and results are passed by value",
            "{0}; a deployment call copies arguments and results to and from a replica, so references and pointers cannot cross it. {1}");

        public static readonly DiagnosticDescriptor RefLikeType = Rule(
            "SERVE010",
            "Deployment parameters and results cannot be by-ref-like types",
            "{0} has the by-ref-like type '{1}', which cannot be stored in an argument struct or cross to a replica. Use {2} instead.");

        public static readonly DiagnosticDescriptor DuplicateHandleMethod = Rule(
            "SERVE011",
            "Two methods produce the same handle method",
            "Methods '{0}' and '{1}' of '{2}' would both become the handle method '{3}'. Rename one of them, or make one non-public to keep it off the handle.");

        public static readonly DiagnosticDescriptor GenericMethod = Rule(
            "SERVE012",
            "Deployment methods must not be generic",
            "Method '{0}' is generic; a handle method needs concrete parameter and result types. Use concrete types, or make it non-public to keep it off the handle.");

        public static readonly DiagnosticDescriptor ReservedHandleMethodName = Rule(
            "SERVE013",
            "Handle method name clashes with DeploymentHandle",
            "Method '{0}' would become the handle method '{1}', which clashes with DeploymentHandle.{1}. Rename the method.");

        public static readonly DiagnosticDescriptor MethodIdCollision = Rule(
            "SERVE014",
            "Two methods have the same method id",
            "Methods '{0}' and '{1}' of '{2}' have the same method id {3} (their signature hashes collide). Rename one of them.");

        public static readonly DiagnosticDescriptor DuplicateBind = Rule(
            "SERVE015",
            "Two constructors produce the same Bind overload",
            "Constructors '{0}' and '{1}' of '{2}' would both become 'Bind({3})' (ReplicaContext and [FromServices] parameters are not part of Bind). Change the bound parameters of one constructor, or make one non-public.");

        public static readonly DiagnosticDescriptor FunctionNotInStaticPartialClass = Rule(
            "SERVE016",
            "Function deployment must be in a static partial class",
            "Function deployment '{0}' is declared in '{1}', which is not a static partial class. Declare it in a 'static partial class', or put [Deployment] on a partial class instead.");

        public static readonly DiagnosticDescriptor FunctionNotStatic = Rule(
            "SERVE017",
            "Function deployment must be static",
            "Function deployment '{0}' is not static. Make the method static, or put [Deployment] on its class to deploy the class.");

        public static readonly DiagnosticDescriptor OptionOutOfRange = Rule(
            "SERVE018",
            "Deployment option out of range",
            "Deployment '{0}': {1} = {2} is out of range; {3}");

        public static readonly DiagnosticDescriptor DuplicateHandleType = Rule(
            "SERVE019",
            "Two deployments generate the same handle type",
            "Deployments '{0}' and '{1}' both generate the handle type '{2}' (handles of nested classes and functions are generated at namespace level). Rename one of them.");

        public static readonly DiagnosticDescriptor RouteValueWithoutParameter = Rule(
            "SERVE020",
            "Every route template value needs a parameter",
            "The route template '{0}' of method '{1}' has the value '{{{2}}}', but no parameter binds it. Add a parameter named '{2}' (or [FromRoute(Name = \"{2}\")]), or remove it from the template.");

        public static readonly DiagnosticDescriptor BatchParameters = Rule(
            "SERVE030",
            "A [Batch] method takes one IReadOnlyList<T>",
            "Batch method '{0}' takes {1}; a [Batch] method takes exactly one IReadOnlyList<T> parameter (the inputs of one batch) and optionally a CancellationToken. Declare it as '{2}'.");

        public static readonly DiagnosticDescriptor BatchResult = Rule(
            "SERVE031",
            "A [Batch] method returns IReadOnlyList<R>",
            "Batch method '{0}' returns '{1}'; a [Batch] method returns one result per input: IReadOnlyList<R>, Task<IReadOnlyList<R>> or ValueTask<IReadOnlyList<R>>, or streams one item per input at every step: IAsyncEnumerable<IReadOnlyList<R>>. {2}");

        public static readonly DiagnosticDescriptor BatchOptionOutOfRange = Rule(
            "SERVE032",
            "Batch option out of range",
            "Batch method '{0}': {1} = {2} is out of range; {3}");

        public static readonly DiagnosticDescriptor BatchNotHandleMethod = Rule(
            "SERVE033",
            "[Batch] only applies to a public instance method of a deployment class",
            "[Batch] on '{0}' has no effect: it is {1}. Put [Batch] on a public instance method of a [Deployment] class.");

        public static readonly DiagnosticDescriptor BatchPropertyClash = Rule(
            "SERVE034",
            "The generated batch settings property clashes with a member",
            "Batch method '{0}' gets a generated property '{1}' (its batch settings), but the class already has a member named '{1}'. Rename that member.");

        public static readonly DiagnosticDescriptor MultiplexedShape = Rule(
            "SERVE050",
            "A [Multiplexed] method loads one model by id",
            "[Multiplexed] method '{0}' must be an instance method 'Task<TModel> {0}(string modelId)' or return ValueTask<TModel>, optionally with a trailing CancellationToken. Change its signature to that shape.");

        public static readonly DiagnosticDescriptor MultiplexedLimit = Rule(
            "SERVE051",
            "MaxModelsPerReplica must be at least 1",
            "[Multiplexed] method '{0}': MaxModelsPerReplica = {1} is out of range; use 1 or more (the default is 3).");

        public static readonly DiagnosticDescriptor MultiplexedTwice = Rule(
            "SERVE052",
            "One [Multiplexed] method per deployment",
            "Deployment class '{0}' already has the [Multiplexed] model loader '{1}'; '{2}' cannot be a second one. Load every model kind through one method, or split the deployment.");

        public static readonly DiagnosticDescriptor GraphNodeParameter = Rule(
            "SERVE040",
            "Deployment parameters and results are values, not graph nodes",
            "{0} is the graph node type '{1}'; a deployment receives and returns values, and graph nodes exist only while a graph is built. Declare the value type '{2}' and pass the node to the generated graph builder instead (e.g. model.Predict(node) or FDeployment.Bind(node)).");

        public static readonly DiagnosticDescriptor HiddenGraphBuilder = new(
            "SERVE041",
            "Graph builder hidden by an Application member",
            "Method '{0}' gets no deployment graph builder: 'Application<{1}>.{2}' already has that name, so 'app.{2}(node)' would not reach it. Rename the method to use it in a deployment graph, or ignore this warning if you do not.",
            Category, DiagnosticSeverity.Warning, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor InternalError = Rule(
            "SERVE099",
            "Serve generator internal error",
            "The Serve generator failed on '{0}': {1}. This is a bug in Serve.Generators; please report it with the declaration that triggers it.");

        private static readonly Dictionary<string, DiagnosticDescriptor> s_byId = Index(
            ClassNotPartial, ClassGeneric, ClassAbstract, ClassStatic, ContainingTypeNotPartial, ContainingTypeGeneric,
            DeploymentInaccessible, NoPublicConstructor, ByReference, RefLikeType, DuplicateHandleMethod, GenericMethod,
            ReservedHandleMethodName, MethodIdCollision, DuplicateBind, FunctionNotInStaticPartialClass, FunctionNotStatic,
            OptionOutOfRange, DuplicateHandleType, RouteValueWithoutParameter, BatchParameters, BatchResult, BatchOptionOutOfRange,
            BatchNotHandleMethod, BatchPropertyClash, MultiplexedShape, MultiplexedLimit, MultiplexedTwice, GraphNodeParameter, HiddenGraphBuilder, InternalError);

        /// <summary>All rules, in id order.</summary>
        public static IReadOnlyCollection<DiagnosticDescriptor> All => s_byId.Values;

        public static DiagnosticDescriptor Find(string id) => s_byId.TryGetValue(id, out var d) ? d : InternalError;

        private static DiagnosticDescriptor Rule(string id, string title, string message) =>
            new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        private static Dictionary<string, DiagnosticDescriptor> Index(params DiagnosticDescriptor[] descriptors)
        {
            var byId = new Dictionary<string, DiagnosticDescriptor>();
            foreach (var d in descriptors)
                byId.Add(d.Id, d);
            return byId;
        }
    }
}
