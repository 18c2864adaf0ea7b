namespace Serve.Generators.Tests;

/// <summary>Method ids are FNV-1a 32-bit hashes of the UTF-8 signature: the same on every build, machine and runtime.</summary>
public sealed class MethodIdTests
{
    [Theory]
    [InlineData("", 0x811c9dc5u)]
    [InlineData("a", 0xe40c292cu)]
    [InlineData("foobar", 0xbf9cf968u)]
    public void MatchesTheFnv1aReferenceVectors(string input, uint expected) =>
        Assert.Equal(unchecked((int)expected), DeploymentGenerator.Parser.MethodId(input));

    [Fact]
    public void GreeterIdsAreStable()
    {
        // Pinned: changing these breaks callers built against an older deployment.
        Assert.Equal(-2071478546, DeploymentGenerator.Parser.MethodId("Call()"));
        Assert.Equal(1772404786, DeploymentGenerator.Parser.MethodId("Shout(string)"));
    }

    [Fact]
    public void HashesUtf8Bytes() =>
        Assert.Equal(1699162448, DeploymentGenerator.Parser.MethodId("Gr\u00fc\u00dfe(string)")); // over UTF-16 it would be 1721697162

    [Fact]
    public void KnownCollisionUsedByTheDiagnosticTest() =>
        Assert.Equal(DeploymentGenerator.Parser.MethodId("M15119()"), DeploymentGenerator.Parser.MethodId("M203802()"));
}
