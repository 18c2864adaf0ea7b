using System;
using System.Collections.Generic;
using System.Linq;
using Serve.Generators.Helpers;
using Serve.Generators.Model;

namespace Serve.Generators
{
    public sealed partial class DeploymentGenerator
    {
        // Handle types generated in this compilation are error types while the generator runs: constructor
        // parameters that name one are resolved here, from models alone, after every deployment is parsed.
        internal sealed partial class Parser
        {
            /// <summary>
            /// Replaces constructor parameters typed with a not-yet-generated <c>YHandle</c> by the handle generated for
            /// deployment <c>Y</c> in this compilation, and marks a deployment whose handle another one already generates.
            /// </summary>
            public static DeploymentModel ResolveHandles(DeploymentModel model, EquatableArray<HandleNameModel> handles)
            {
                // The ordinally first deployment keeps a contested handle name. Two with the same key (a method declared
                // twice, already CS0111) would also share a hint name, which the driver rejects: neither is emitted.
                var isDuplicate = false;
                var sameKey = 0;
                foreach (var h in handles)
                {
                    if (h.FullName != model.HandleFullName)
                        continue;
                    var order = string.CompareOrdinal(h.Key, model.Key);
                    if (order < 0 || (order == 0 && ++sameKey > 1))
                        isDuplicate = true;
                }

                var changed = false;
                var constructors = new ConstructorModel[model.Constructors.Count];
                for (var c = 0; c < constructors.Length; c++)
                {
                    var ctor = model.Constructors[c];
                    var parameters = new ParameterModel[ctor.Parameters.Count];
                    for (var i = 0; i < parameters.Length; i++)
                    {
                        var p = ctor.Parameters[i];
                        if (p.Kind == ParameterKind.UnresolvedHandle)
                        {
                            changed = true;
                            var resolved = FindHandle(p.Type, model.Namespace, handles);
                            p = resolved is null
                                ? p with { Kind = ParameterKind.Value }
                                : p with { Kind = ParameterKind.Handle, Type = resolved, TypeOf = resolved, SignatureType = resolved.Substring("global::".Length) };
                        }
                        parameters[i] = p;
                    }
                    constructors[c] = ctor with { Parameters = new EquatableArray<ParameterModel>(parameters) };
                }

                if (!changed && !isDuplicate)
                    return model;
                return model with
                {
                    Constructors = changed ? new EquatableArray<ConstructorModel>(constructors) : model.Constructors,
                    IsDuplicateHandle = isDuplicate,
                };
            }

            // Mirrors C# name lookup well enough for handles: a qualified name matches by suffix; a simple name prefers
            // the innermost enclosing namespace, then a handle that is the only one of that name (imported by a using).
            private static string? FindHandle(string written, string ns, EquatableArray<HandleNameModel> handles)
            {
                var name = written.TrimEnd('?');
                if (name.StartsWith("global::", StringComparison.Ordinal))
                    name = name.Substring("global::".Length);
                var simple = name.Substring(name.LastIndexOf('.') + 1);

                var candidates = handles.Where(h => h.SimpleName == simple).ToList();
                if (name.IndexOf('.') >= 0)
                {
                    var match = candidates.Where(h => h.FullName == "global::" + name || h.FullName.EndsWith("." + name, StringComparison.Ordinal)).ToList();
                    return match.Count == 1 ? match[0].FullName : null;
                }

                HandleNameModel? best = null;
                foreach (var h in candidates)
                {
                    var enclosing = h.Namespace.Length == 0 || ns == h.Namespace || ns.StartsWith(h.Namespace + ".", StringComparison.Ordinal);
                    if (enclosing && (best is null || h.Namespace.Length > best.Namespace.Length))
                        best = h;
                }
                if (best is not null)
                    return best.FullName;
                return candidates.Count == 1 ? candidates[0].FullName : null;
            }
        }
    }
}
