using System.Collections.Generic;
using System.Linq;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    internal static partial class Emitter
    {
        // One Bind overload per public constructor: bound parameters only, handles as Application<THandle>.
        private static void WriteBind(SourceWriter w, DeploymentModel model)
        {
            var application = "global::Serve.Application<" + model.HandleFullName + ">";
            if (model.IsFunction)
            {
                w.WriteLine("/// <summary>Binds the <c>" + DisplayName(model) + "</c> function deployment, for <c>RunAsync</c> or another Bind.</summary>");
                w.WriteLine("public static " + application + " Bind()");
                w.Indent();
                w.WriteLine("=> new " + application + "(__ServeDefinition, 0, global::System.Array.Empty<object?>());");
                w.Unindent();
                return;
            }

            var first = true;
            foreach (var ctor in model.Constructors)
            {
                if (!first)
                    w.WriteLine();
                first = false;
                var bound = ctor.Parameters.Where(IsBound).ToList();
                var parameters = bound.Select(p => BindType(p) + " " + Identifier(p.Name) + (p.DefaultValue is null ? "" : " = " + p.DefaultValue));
                var arguments = bound.Count == 0
                    ? "global::System.Array.Empty<object?>()"
                    : "new object?[] { " + string.Join(", ", bound.Select(p => Identifier(p.Name))) + " }";
                w.WriteLine("/// <summary>Binds the <c>" + DisplayName(model) + "</c> deployment to constructor arguments, for <c>RunAsync</c> or another Bind.</summary>");
                w.WriteLine("public static " + application + " Bind(" + string.Join(", ", parameters) + ")");
                w.Indent();
                w.WriteLine("=> new " + application + "(__ServeDefinition, " + Literal(ctor.Index) + ", " + arguments + ");");
                w.Unindent();
            }
        }

        private static bool IsBound(ParameterModel p) => p.Kind is not (ParameterKind.Context or ParameterKind.Service or ParameterKind.OptionalService);

        private static string BindType(ParameterModel p) => p.Kind switch
        {
            ParameterKind.Handle => "global::Serve.Application<" + p.Type + ">",
            ParameterKind.UntypedHandle => "global::Serve.Application",
            _ => p.Type,
        };

        private static void WriteDefinition(SourceWriter w, DeploymentModel model)
        {
            w.WriteLine(NeverBrowsable);
            w.WriteLine("internal static readonly global::Serve.DeploymentDefinition __ServeDefinition = new global::Serve.DeploymentDefinition");
            w.OpenBlock();
            w.WriteLine("Name = " + Literal(model.DeploymentName) + ",");
            w.WriteLine("ImplementationType = typeof(" + model.ImplementationType + "),");
            w.WriteLine("HandleType = typeof(" + model.HandleFullName + "),");
            w.WriteLine("DefaultOptions = " + Options(model) + ",");
            w.WriteLine("CreateHandle = static target => new " + model.HandleFullName + "(target),");
            WriteCreateInstance(w, model);
            w.WriteLine("Invoker = new __ServeInvoker(),");
            WriteMethods(w, model);
            WriteHttpEndpoints(w, model);
            if (model.UserConfigType is { } config)
            {
                w.WriteLine("UserConfigType = typeof(" + model.UserConfigTypeOf + "),");
                w.WriteLine("Reconfigure = static (instance, config, cancellationToken) => ((global::Serve.IReconfigurable<" + config + ">)instance)");
                w.Indent();
                w.WriteLine(".ReconfigureAsync(" + Helpers + ".ConvertUserConfig<" + config + ">(config, " + Literal(model.DeploymentName) + "), cancellationToken),");
                w.Unindent();
            }
            if (model.Multiplexed is not null)
                w.WriteLine("Multiplexed = static instance => ((" + model.ImplementationType + ")instance).__serveModels,");
            WriteBatchQueuesAccessor(w, model);
            if (model.IsFunction)
                w.WriteLine("IsFunction = true,");
            w.CloseBlock(";");
        }

        // Model multiplexing: the replica's model cache and the accessor user methods call.
        private static void WriteMultiplexed(SourceWriter w, DeploymentModel model)
        {
            if (model.Multiplexed is not { } m)
                return;
            var cache = "global::Serve.Multiplexing.MultiplexedModels<" + m.ModelType + ">";
            w.WriteLine();
            w.WriteLine(NeverBrowsable);
            w.WriteLine("private readonly " + cache + " __serveModels = new " + cache + "(" + Literal(model.DeploymentName) + ", " + Literal(m.MaxModelsPerReplica) + ");");
            w.WriteLine(NeverBrowsable);
            w.WriteLine("private global::System.Func<string, " + CancellationTokenType + ", global::System.Threading.Tasks.Task<" + m.ModelType + ">>? __serveLoadModel;");
            w.WriteLine();
            w.WriteLine("/// <summary>");
            w.WriteLine("/// The model of the current call (<see cref=\"global::Serve.ReplicaContext.ModelId\"/>): loaded with <c>" + m.MethodName + "</c> on first use,");
            w.WriteLine("/// at most " + Literal(m.MaxModelsPerReplica) + " kept per replica (least recently used evicted and disposed).");
            w.WriteLine("/// </summary>");
            w.WriteLine("private global::System.Threading.Tasks.ValueTask<" + m.ModelType + "> GetModelAsync(" + CancellationTokenType + " cancellationToken = default)");
            w.Indent();
            var call = m.MethodName + "(id" + (m.TakesCancellationToken ? ", token" : "") + ")" + (m.ReturnsValueTask ? ".AsTask()" : "");
            w.WriteLine("=> __serveModels.GetAsync(__serveLoadModel ??= (id, token) => " + call + ", cancellationToken);");
            w.Unindent();
        }

        private static string Options(DeploymentModel model)
        {
            var o = model.Options;
            var set = new List<string> { "Name = " + Literal(model.DeploymentName) };
            if (o.NumReplicas is { } replicas)
                set.Add("NumReplicas = " + Literal(replicas));
            if (o.MaxOngoingRequests is { } ongoing)
                set.Add("MaxOngoingRequests = " + Literal(ongoing));
            if (o.MaxQueuedRequests is { } queued)
                set.Add("MaxQueuedRequests = " + Literal(queued));
            if (o.RoutePrefix is { } prefix)
                set.Add("RoutePrefix = " + Literal(prefix));
            if (o.Version is { } version)
                set.Add("Version = " + Literal(version));
            if (o.NumCpus is { } cpus)
                set.Add("NumCpus = " + Literal(cpus));
            if (o.NumGpus is { } gpus)
                set.Add("NumGpus = " + Literal(gpus));
            if (o.GracefulShutdownTimeoutSeconds is { } seconds)
                set.Add("GracefulShutdownTimeout = global::System.TimeSpan.FromSeconds(" + Literal(seconds) + ")");
            if (o.HealthCheckPeriodSeconds is { } period)
                set.Add("HealthCheckPeriod = global::System.TimeSpan.FromSeconds(" + Literal(period) + ")");
            if (o.HealthCheckTimeoutSeconds is { } timeout)
                set.Add("HealthCheckTimeout = global::System.TimeSpan.FromSeconds(" + Literal(timeout) + ")");
            if (o.AllowUnknownJsonProperties is true)
                set.Add("AllowUnknownJsonProperties = true");
            if (o.RetryOnNodeFailure is false)
                set.Add("RetryOnNodeFailure = false");
            if (o.MaxReplicasPerNode is { } cap)
                set.Add("MaxReplicasPerNode = " + Literal(cap));
            if (o.NodeSelector is { } selector && OptionRules.TryParseNodeSelector(selector, out var labels, out _))
                set.Add("NodeSelector = { " + string.Join(", ", labels.Select(l => "[" + Literal(l.Key) + "] = " + Literal(l.Value))) + " }");
            return "new global::Serve.DeploymentOptions { " + string.Join(", ", set) + " }";
        }

        private static void WriteCreateInstance(SourceWriter w, DeploymentModel model)
        {
            if (model.IsFunction)
            {
                w.WriteLine("CreateInstance = static activation => " + Helpers + ".FunctionInstance,");
                return;
            }
            if (model.Constructors.Count == 0)
            {
                w.WriteLine("CreateInstance = static activation => throw activation.UnknownConstructor(),");
                return;
            }
            w.WriteLine("CreateInstance = static activation => activation.ConstructorIndex switch");
            w.OpenBlock();
            foreach (var ctor in model.Constructors)
            {
                var index = 0;
                var arguments = new List<string>();
                foreach (var p in ctor.Parameters)
                {
                    var name = Literal(p.Name);
                    arguments.Add(p.Kind switch
                    {
                        ParameterKind.Context => "activation.Context",
                        ParameterKind.Service => "activation.GetService<" + p.TypeOf + ">(" + name + ")",
                        ParameterKind.OptionalService => "activation.Services.GetService(typeof(" + p.TypeOf + ")) as " + p.TypeOf,
                        ParameterKind.UntypedHandle => "activation.GetArgument<global::Serve.DeploymentHandle>(" + Literal(index++) + ", " + name + ")",
                        _ => "activation.GetArgument<" + p.Type + ">(" + Literal(index++) + ", " + name + ")",
                    });
                }
                w.WriteLine(Literal(ctor.Index) + " => new " + model.ImplementationType + "(" + string.Join(", ", arguments) + "),");
            }
            w.WriteLine("_ => throw activation.UnknownConstructor(),");
            w.CloseBlock(",");
        }

        private static void WriteHttpEndpoints(SourceWriter w, DeploymentModel model)
        {
            if (!model.Methods.Any(m => m.Http is not null))
                return;
            const string BindingType = CodeGeneration + ".HttpParameterBinding";
            w.WriteLine("HttpEndpoints = new " + CodeGeneration + ".HttpEndpoint[]");
            w.OpenBlock();
            foreach (var m in model.Methods)
            {
                if (m.Http is not { } http)
                    continue;
                var bindings = http.Parameters;
                var arguments = m.Parameters.Where(p => p.Kind != ParameterKind.CancellationToken).ToList();
                var parameters = bindings.Count == 0
                    ? "global::System.Array.Empty<" + BindingType + ">()"
                    : "new " + BindingType + "[] { " + string.Join(", ", bindings.Select((b, i) =>
                    {
                        var text = "new " + BindingType + " { Source = " + CodeGeneration + ".HttpParameterSource." + b.Source + ", Name = " + Literal(b.Name);
                        if (i < arguments.Count && arguments[i].DefaultValue is { } value)
                            text += ", HasDefault = true, DefaultValue = (object?)((" + arguments[i].Type + ")(" + value + "))";
                        return text + " }";
                    })) + " }";
                w.WriteLine("new " + CodeGeneration + ".HttpEndpoint");
                w.OpenBlock();
                w.WriteLine("MethodId = " + Literal(m.MethodId) + ",");
                w.WriteLine("Method = " + Literal(http.Verb) + ",");
                w.WriteLine("Template = " + Literal(http.Template) + ",");
                w.WriteLine("Parameters = " + parameters + ",");
                w.CloseBlock(",");
            }
            w.CloseBlock(",");
        }

        private static void WriteMethods(SourceWriter w, DeploymentModel model)
        {
            const string MethodType = CodeGeneration + ".DeploymentMethod";
            if (model.Methods.Count == 0)
            {
                w.WriteLine("Methods = global::System.Array.Empty<" + MethodType + ">(),");
                return;
            }
            w.WriteLine("Methods = new " + MethodType + "[]");
            w.OpenBlock();
            foreach (var m in model.Methods)
            {
                var arguments = m.Parameters.Where(p => p.Kind != ParameterKind.CancellationToken).ToList();
                var kind = m.Shape == ResultShape.Stream ? "Stream" : IsVoid(m.Shape) ? "Void" : "Value";
                var names = arguments.Count == 0
                    ? "global::System.Array.Empty<string>()"
                    : "new[] { " + string.Join(", ", arguments.Select(p => Literal(p.Name))) + " }";
                var types = arguments.Count == 0
                    ? "global::System.Array.Empty<global::System.Type>()"
                    : "new[] { " + string.Join(", ", arguments.Select(p => "typeof(" + p.TypeOf + ")")) + " }";
                w.WriteLine("new " + MethodType);
                w.OpenBlock();
                w.WriteLine("Name = " + Literal(m.Name) + ",");
                w.WriteLine("HandleName = " + Literal(m.HandleName) + ",");
                w.WriteLine("MethodId = " + Literal(m.MethodId) + ",");
                if (m.IsCall)
                    w.WriteLine("IsCall = true,");
                w.WriteLine("Kind = " + CodeGeneration + ".DeploymentMethodKind." + kind + ",");
                if (m.ResultTypeOf is not null)
                    w.WriteLine("ResultType = typeof(" + m.ResultTypeOf + "),");
                w.WriteLine("ParameterNames = " + names + ",");
                w.WriteLine("ParameterTypes = " + types + ",");
                if (m.Batch is { } batch)
                    w.WriteLine("MaxBatchSize = " + Literal(batch.MaxBatchSize) + ",");
                w.CloseBlock(",");
            }
            w.CloseBlock(",");
        }
    }
}
