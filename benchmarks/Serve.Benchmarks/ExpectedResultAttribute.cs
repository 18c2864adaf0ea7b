namespace Serve.Benchmarks;

/// <summary>
/// What a benchmark method must return; the smoke check (<c>--smoke</c>, also run before every BenchmarkDotNet run)
/// invokes every <c>[Benchmark]</c> once and fails loudly when the result differs or the attribute is missing.
/// A method returning a handle is checked by calling the handle: <c>CallAsync(41)</c> must return 42.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ExpectedResultAttribute(long value) : Attribute
{
    public long Value { get; } = value;
}
