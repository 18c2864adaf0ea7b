using System.Collections.Generic;
using System.Linq;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    internal static partial class Emitter
    {
        private const string GraphNodeType = "global::Serve.GraphNode";

        /// <summary>
        /// The methods that get a graph builder: they return a value and take at least one value (a builder needs a
        /// node to infer the graph's input type from), and no member of <c>Application&lt;T&gt;</c> hides the builder.
        /// </summary>
        internal static IEnumerable<MethodModel> GraphMethods(DeploymentModel model) =>
            model.Methods.Where(m => m.HasGraphShape && (model.IsFunction || !m.IsHiddenGraphBuilder));

        // A function deployment: Bind<TInput>(GraphNode<TInput, P> p, ...) beside Bind(), returning a call node.
        private static void WriteFunctionGraphBind(SourceWriter w, DeploymentModel model)
        {
            foreach (var method in GraphMethods(model))
            {
                w.WriteLine();
                w.WriteLine("/// <summary>A deployment graph node that calls the <c>" + DisplayName(model) + "</c> function deployment with the values of graph nodes (Ray's <c>fn.bind(node)</c>); pass it to other graph builders or <c>DagDriver.Bind</c>.</summary>");
                WriteGraphBuilder(w, model, method, "Bind", thisParameter: null, target: "Bind()");
            }
        }

        // A class deployment: one extension method per method on Application<XHandle>: model.Predict(node).
        private static void WriteGraphExtensions(SourceWriter w, DeploymentModel model)
        {
            var methods = GraphMethods(model).ToList();
            if (methods.Count == 0)
                return;
            var application = "global::Serve.Application<" + model.HandleFullName + ">";
            w.WriteLine();
            w.WriteLine("/// <summary>Deployment graph builders of the <c>" + DisplayName(model) + "</c> deployment: <c>" + DisplayName(model) + ".Bind(...)." + methods[0].Name + "(node)</c> is a graph node that calls it.</summary>");
            w.WriteLine(GeneratedCodeAttribute);
            w.WriteLine(Accessibility(model) + " static partial class " + model.HandleName + "GraphExtensions");
            w.OpenBlock();
            var first = true;
            foreach (var method in methods)
            {
                if (!first)
                    w.WriteLine();
                first = false;
                var self = UniqueName(method, "deployment");
                w.WriteLine("/// <summary>A deployment graph node that calls <c>" + MethodDisplay(model, method) + "</c> on this bound deployment with the values of graph nodes (Ray's <c>model.method.bind(node)</c>).</summary>");
                WriteGraphBuilder(w, model, method, method.Name, "this " + application + " " + self, self);
            }
            w.CloseBlock();
        }

        private static void WriteGraphBuilder(SourceWriter w, DeploymentModel model, MethodModel method, string name, string? thisParameter, string target)
        {
            var input = UniqueName(method, "TInput");
            var values = method.Parameters.Where(p => p.Kind != ParameterKind.CancellationToken).ToList();
            var result = GraphNodeType + "<" + input + ", " + method.ResultType + ">";
            var parameters = values.Select(p => GraphNodeType + "<" + input + ", " + p.Type + "> " + Identifier(p.Name));
            if (thisParameter is not null)
                parameters = new[] { thisParameter }.Concat(parameters);
            w.WriteLine("public static " + result + " " + Identifier(name) + "<" + input + ">(" + string.Join(", ", parameters) + ")");
            w.Indent();
            w.WriteLine("=> " + CodeGeneration + ".GraphBuilders.Call<" + input + ", " + method.ResultType + ">(" + target + ", " + StructType(model, method) + ".Id, "
                        + Literal(method.Name) + ", new string[] { " + string.Join(", ", values.Select(p => Literal(p.Name))) + " }, new " + GraphNodeType + "[] { "
                        + string.Join(", ", values.Select(p => Identifier(p.Name))) + " });");
            w.Unindent();
        }

        private static string UniqueName(MethodModel method, string name)
        {
            while (method.Parameters.Any(p => p.Name == name))
                name += "_";
            return name;
        }
    }
}
