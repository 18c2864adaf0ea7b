using System.Linq;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    internal static partial class Emitter
    {
        // XHandle: one method per deployment method, each building the argument struct and calling the base class.
        private static void WriteHandle(SourceWriter w, DeploymentModel model)
        {
            w.WriteLines($$"""
                /// <summary>A typed handle to the <c>{{DisplayName(model)}}</c> deployment.</summary>
                {{GeneratedCodeAttribute}}
                {{Accessibility(model)}} sealed partial class {{model.HandleName}} : global::Serve.DeploymentHandle
                {
                    /// <summary>Created by the Serve host; not for user code.</summary>
                    {{NeverBrowsable}}
                    public {{model.HandleName}}({{CodeGeneration}}.HandleTarget target) : base(target) { }
                """);
            w.Indent();

            foreach (var method in model.Methods)
            {
                w.WriteLine();
                WriteHandleMethod(w, model, method);
            }
            w.CloseBlock();
        }

        private static void WriteHandleMethod(SourceWriter w, DeploymentModel model, MethodModel method)
        {
            var token = TokenName(method);
            var arguments = method.Parameters.Where(p => p.Kind != ParameterKind.CancellationToken).ToList();
            var parameters = arguments
                .Select(p => p.Type + " " + Identifier(p.Name) + (p.DefaultValue is null ? "" : " = " + p.DefaultValue))
                .Concat(new[] { CancellationTokenType + " " + token + " = default" });
            var structType = StructType(model, method);
            var newStruct = "new " + structType + "(" + string.Join(", ", arguments.Select(p => Identifier(p.Name))) + ")";

            string returnType, call;
            switch (method.Shape)
            {
                case ResultShape.Stream:
                    returnType = AsyncEnumerableType + "<" + method.ResultType + ">";
                    call = "InvokeStream<" + structType + ", " + method.ResultType + ">";
                    w.WriteLine("/// <summary>Calls <c>" + MethodDisplay(model, method) + "</c> on a replica and streams its items.</summary>");
                    break;
                case var shape when IsVoid(shape):
                    returnType = ValueTaskType;
                    call = "InvokeVoidAsync<" + structType + ">";
                    w.WriteLine("/// <summary>Calls <c>" + MethodDisplay(model, method) + "</c> on a replica.</summary>");
                    break;
                default:
                    returnType = ValueTaskType + "<" + method.ResultType + ">";
                    call = "InvokeAsync<" + structType + ", " + method.ResultType + ">";
                    w.WriteLine("/// <summary>Calls <c>" + MethodDisplay(model, method) + "</c> on a replica.</summary>");
                    break;
            }
            w.WriteLine("public " + returnType + " " + method.HandleName + "(" + string.Join(", ", parameters) + ")");
            w.Indent();
            w.WriteLine("=> " + call + "(" + newStruct + ", " + token + ");");
            w.Unindent();
        }
    }
}
