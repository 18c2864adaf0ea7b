using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Serve.Generators.Model
{
    /// <summary>Where a diagnostic points: file, span and line span, rebuilt into a <see cref="Location"/> only when reported.</summary>
    /// <remarks>Holds no ISymbol/SyntaxNode/Location so the pipeline caches (TextSpan and LinePositionSpan are plain values).</remarks>
    internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
    {
        public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

        public static LocationInfo? From(Location? location)
        {
            if (location is null || !location.IsInSource)
                return null;
            return new LocationInfo(location.SourceTree?.FilePath ?? "", location.SourceSpan, location.GetLineSpan().Span);
        }

        public static LocationInfo? From(SyntaxNode? node) => From(node?.GetLocation());

        public static LocationInfo? From(SyntaxToken token) => From(token.GetLocation());
    }
}
