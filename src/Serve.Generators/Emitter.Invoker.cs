using System.Collections.Generic;
using System.Linq;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    internal static partial class Emitter
    {
        // One readonly struct per method: holds the arguments and calls the user method directly (no reflection).
        private static void WriteInvocations(SourceWriter w, DeploymentModel model)
        {
            w.WriteLine(NeverBrowsable);
            w.WriteLine("internal static class __ServeInvocations");
            w.OpenBlock();
            var first = true;
            foreach (var method in model.Methods)
            {
                if (!first)
                    w.WriteLine();
                first = false;
                WriteInvocation(w, model, method);
            }
            w.CloseBlock();
        }

        private static void WriteInvocation(SourceWriter w, DeploymentModel model, MethodModel method)
        {
            var arguments = method.Parameters.Where(p => p.Kind != ParameterKind.CancellationToken).ToList();
            var contract = method.Shape switch
            {
                ResultShape.Stream => CodeGeneration + ".IStreamInvocation<" + method.ResultType + ">",
                var shape when IsVoid(shape) => CodeGeneration + ".IVoidInvocation",
                _ => CodeGeneration + ".IInvocation<" + method.ResultType + ">",
            };
            w.WriteLine("public readonly struct " + method.StructName + " : " + contract);
            w.OpenBlock();
            w.WriteLine("public const int Id = " + Literal(method.MethodId) + ";");
            foreach (var p in arguments)
                w.WriteLine("private readonly " + p.Type + " _" + p.Name + ";");
            if (arguments.Count > 0)
            {
                var parameters = string.Join(", ", arguments.Select(p => p.Type + " " + Identifier(p.Name)));
                var assignments = string.Join(" ", arguments.Select(p => "_" + p.Name + " = " + Identifier(p.Name) + ";"));
                w.WriteLine("public " + method.StructName + "(" + parameters + ") { " + assignments + " }");
            }
            w.WriteLine("public int MethodId => Id;");
            w.WriteLine(arguments.Count == 0
                ? "public object?[] GetArguments() => global::System.Array.Empty<object?>();"
                : "public object?[] GetArguments() => new object?[] { " + string.Join(", ", arguments.Select(p => "_" + p.Name)) + " };");

            var target = model.IsFunction
                ? model.ImplementationType + "." + Identifier(method.Name)
                : "((" + model.ImplementationType + ")instance)." + Identifier(method.Name);
            var call = target + "(" + string.Join(", ", method.Parameters.Select(p => p.Kind == ParameterKind.CancellationToken ? "cancellationToken" : "_" + p.Name)) + ")";
            const string Signature = "(object instance, " + CancellationTokenType + " cancellationToken)";
            switch (method.Shape)
            {
                case var _ when method.Batch is { } batch:
                    WriteBatchInvocation(w, model, method, batch, Signature);
                    break;
                case ResultShape.Value:
                case ResultShape.TaskOfT:
                    w.WriteLine("public " + ValueTaskType + "<" + method.ResultType + "> InvokeAsync" + Signature);
                    w.Indent();
                    w.WriteLine("=> new " + ValueTaskType + "<" + method.ResultType + ">(" + call + ");");
                    w.Unindent();
                    break;
                case ResultShape.ValueTaskOfT:
                    w.WriteLine("public " + ValueTaskType + "<" + method.ResultType + "> InvokeAsync" + Signature);
                    w.Indent();
                    w.WriteLine("=> " + call + ";");
                    w.Unindent();
                    break;
                case ResultShape.Void:
                    w.WriteLine("public " + ValueTaskType + " InvokeAsync" + Signature);
                    w.OpenBlock();
                    w.WriteLine(call + ";");
                    w.WriteLine("return default;");
                    w.CloseBlock();
                    break;
                case ResultShape.Task:
                    w.WriteLine("public " + ValueTaskType + " InvokeAsync" + Signature);
                    w.Indent();
                    w.WriteLine("=> new " + ValueTaskType + "(" + call + ");");
                    w.Unindent();
                    break;
                case ResultShape.ValueTask:
                    w.WriteLine("public " + ValueTaskType + " InvokeAsync" + Signature);
                    w.Indent();
                    w.WriteLine("=> " + call + ";");
                    w.Unindent();
                    break;
                case ResultShape.Stream:
                    w.WriteLine("public " + AsyncEnumerableType + "<" + method.ResultType + "> Invoke" + Signature);
                    w.Indent();
                    w.WriteLine("=> " + call + ";");
                    w.Unindent();
                    break;
            }
            w.CloseBlock();
        }

        // The untyped path: a switch on the stable method id, unboxing each argument into the method's struct.
        private static void WriteInvoker(SourceWriter w, DeploymentModel model)
        {
            w.WriteLines($$"""
                private sealed class __ServeInvoker : {{CodeGeneration}}.IDeploymentInvoker
                {
                    public {{ValueTaskType}}<object?> InvokeAsync(object instance, int methodId, object?[] arguments, {{CancellationTokenType}} cancellationToken)
                    {
                        switch (methodId)
                        {
                """);
            w.Indent();
            w.Indent();
            w.Indent();
            foreach (var method in model.Methods)
            {
                var arguments = method.Parameters.Where(p => p.Kind != ParameterKind.CancellationToken).ToList();
                var structName = "__ServeInvocations." + method.StructName;
                var box = method.Shape == ResultShape.Stream ? Helpers + ".BoxStream" : Helpers + ".Box";
                var invoke = method.Shape == ResultShape.Stream ? ".Invoke(instance, cancellationToken)" : ".InvokeAsync(instance, cancellationToken)";
                w.WriteLine("case " + structName + ".Id:");
                w.Indent();
                w.WriteLine(Helpers + ".ExpectArguments(arguments, " + Literal(arguments.Count) + ", " + Literal(method.Name) + ");");
                if (arguments.Count == 0)
                {
                    w.WriteLine("return " + box + "(new " + structName + "()" + invoke + ");");
                }
                else
                {
                    w.WriteLine("return " + box + "(new " + structName + "(");
                    w.Indent();
                    var lines = new List<string>();
                    for (var i = 0; i < arguments.Count; i++)
                    {
                        var p = arguments[i];
                        lines.Add(Helpers + (p.NotNull ? ".ArgumentNotNull<" : ".Argument<") + p.Type + ">(arguments, " + Literal(i) + ", " + Literal(method.Name) + ", " + Literal(p.Name) + ")");
                    }
                    for (var i = 0; i < lines.Count; i++)
                        w.WriteLine(lines[i] + (i < lines.Count - 1 ? "," : ")" + invoke + ");"));
                    w.Unindent();
                }
                w.Unindent();
            }
            w.WriteLine("default:");
            w.Indent();
            w.WriteLine("throw " + Helpers + ".UnknownMethod(" + Literal(model.DeploymentName) + ", methodId);");
            w.Unindent();
            w.CloseBlock();
            w.CloseBlock();
            w.CloseBlock();
        }
    }
}
