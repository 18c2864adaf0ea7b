using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Serve.CodeGeneration;

namespace Serve.Http;

/// <summary>The parsed route templates of one definition's HTTP endpoints, built once and cached per definition.</summary>
internal static class HttpEndpointRoutes
{
    private static readonly ConditionalWeakTable<DeploymentDefinition, Route[]> s_cache = new();

    internal sealed record Route(HttpEndpoint Endpoint, DeploymentMethod Method, TemplateMatcher Matcher);

    public static Route[] For(DeploymentDefinition definition) =>
        s_cache.GetValue(definition, static d => d.HttpEndpoints
            .Select(e => new Route(
                e,
                d.Methods.First(m => m.MethodId == e.MethodId),
                new TemplateMatcher(TemplateParser.Parse(e.Template.TrimStart('/')), new RouteValueDictionary())))
            .ToArray());
}
