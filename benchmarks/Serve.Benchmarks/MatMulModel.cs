using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Serve.Benchmarks;

/// <summary>Batch settings for <see cref="MatMulModel"/>, applied at run time through <c>UserConfig</c>.</summary>
public sealed record MatMulConfig(int MaxBatchSize, int BatchWaitTimeoutMs, int MaxConcurrentBatches);

/// <summary>
/// A linear layer <c>y = W x</c> with a <c>Dim × Dim</c> weight matrix (64 MB at <c>Dim = 4096</c>, more than the
/// caches hold). One input alone streams all of <c>W</c> from memory; a batch streams it once for all its inputs, each
/// row of <c>W</c> reused from cache for every input. So the batch's cost grows far slower than its size: the case
/// batching is for.
/// </summary>
[Deployment(MaxOngoingRequests = 64)]
public partial class MatMulModel(int dim) : IReconfigurable<MatMulConfig>
{
    private readonly float[][] _rows = MatMul.CreateWeights(dim, seed: 42);

    private static long s_batches;
    private static long s_items;

    /// <summary>Batches run and inputs served since the last <see cref="TakeBatchStats"/>, over every replica.</summary>
    public static (long Batches, long Items) TakeBatchStats() => (Interlocked.Exchange(ref s_batches, 0), Interlocked.Exchange(ref s_items, 0));

    /// <summary>One output vector per input vector.</summary>
    [Batch(MaxBatchSize = 32, BatchWaitTimeoutMs = 2)]
    public IReadOnlyList<float[]> Predict(IReadOnlyList<float[]> inputs)
    {
        Interlocked.Increment(ref s_batches);
        Interlocked.Add(ref s_items, inputs.Count);
        return MatMul.Multiply(_rows, inputs);
    }

    /// <summary>Applies the benchmark's batch settings to this replica.</summary>
    public ValueTask ReconfigureAsync(MatMulConfig config, CancellationToken cancellationToken)
    {
        PredictBatch.MaxBatchSize = config.MaxBatchSize;
        PredictBatch.BatchWaitTimeout = TimeSpan.FromMilliseconds(config.BatchWaitTimeoutMs);
        PredictBatch.MaxConcurrentBatches = config.MaxConcurrentBatches;
        return ValueTask.CompletedTask;
    }
}

/// <summary>The matrix product: System.Numerics.Tensors' vectorized dot product, and a register-blocked kernel for batches.</summary>
public static class MatMul
{
    /// <summary>Deterministic weights in [-1, 1): row <c>j</c> of <c>W</c>.</summary>
    public static float[][] CreateWeights(int dim, int seed)
    {
        var random = new Random(seed);
        var rows = new float[dim][];
        for (var j = 0; j < dim; j++)
        {
            rows[j] = new float[dim];
            for (var i = 0; i < dim; i++)
                rows[j][i] = (float)(random.NextDouble() * 2 - 1);
        }
        return rows;
    }

    /// <summary>
    /// <c>y_b = W x_b</c> for every input. One input is a matrix-vector product (<c>TensorPrimitives.Dot</c> per row,
    /// bound by reading <c>W</c> from memory); a batch is a matrix-matrix product that reads each block of 4 rows of
    /// <c>W</c> once and multiplies it with 4 inputs at a time in registers (16 dot products sharing their loads), the
    /// way GEMM kernels do. Both give the same numbers up to float rounding order.
    /// </summary>
    public static float[][] Multiply(float[][] rows, IReadOnlyList<float[]> inputs)
    {
        var dim = rows.Length;
        var count = inputs.Count;
        var outputs = new float[count][];
        for (var b = 0; b < count; b++)
        {
            // The wide kernel reads without bounds checks: every input must be exactly one row long.
            if (inputs[b].Length != dim)
                throw new ArgumentException($"MatMulModel: input {b} has {inputs[b].Length} values; the model takes vectors of {dim}.", nameof(inputs));
            outputs[b] = new float[dim];
        }
        var blocked = count >= 4 && dim % 4 == 0 && dim % Vector<float>.Count == 0 ? count - count % 4 : 0;
        for (var j = 0; j < dim; j++)
        {
            if (blocked > 0 && j % 4 == 0)
            {
                for (var b = 0; b < blocked; b += 4)
                {
                    if (Vector512.IsHardwareAccelerated && dim % Vector512<float>.Count == 0)
                        Block4x4Wide(rows, j, inputs, b, outputs);
                    else
                        Block4x4(rows, j, inputs, b, outputs);
                }
            }
            for (var b = blocked; b < count; b++)
                outputs[b][j] = TensorPrimitives.Dot(rows[j], inputs[b]);
        }
        return outputs;
    }

    private static void Block4x4(float[][] rows, int j, IReadOnlyList<float[]> inputs, int b, float[][] outputs)
    {
        float[] r0 = rows[j], r1 = rows[j + 1], r2 = rows[j + 2], r3 = rows[j + 3];
        float[] x0 = inputs[b], x1 = inputs[b + 1], x2 = inputs[b + 2], x3 = inputs[b + 3];
        Vector<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (var i = 0; i < r0.Length; i += Vector<float>.Count)
        {
            var y0 = new Vector<float>(x0, i);
            var y1 = new Vector<float>(x1, i);
            var y2 = new Vector<float>(x2, i);
            var y3 = new Vector<float>(x3, i);
            var v = new Vector<float>(r0, i);
            a00 = Vector.FusedMultiplyAdd(v, y0, a00); a01 = Vector.FusedMultiplyAdd(v, y1, a01);
            a02 = Vector.FusedMultiplyAdd(v, y2, a02); a03 = Vector.FusedMultiplyAdd(v, y3, a03);
            v = new Vector<float>(r1, i);
            a10 = Vector.FusedMultiplyAdd(v, y0, a10); a11 = Vector.FusedMultiplyAdd(v, y1, a11);
            a12 = Vector.FusedMultiplyAdd(v, y2, a12); a13 = Vector.FusedMultiplyAdd(v, y3, a13);
            v = new Vector<float>(r2, i);
            a20 = Vector.FusedMultiplyAdd(v, y0, a20); a21 = Vector.FusedMultiplyAdd(v, y1, a21);
            a22 = Vector.FusedMultiplyAdd(v, y2, a22); a23 = Vector.FusedMultiplyAdd(v, y3, a23);
            v = new Vector<float>(r3, i);
            a30 = Vector.FusedMultiplyAdd(v, y0, a30); a31 = Vector.FusedMultiplyAdd(v, y1, a31);
            a32 = Vector.FusedMultiplyAdd(v, y2, a32); a33 = Vector.FusedMultiplyAdd(v, y3, a33);
        }
        Store(outputs, b, j, a00, a01, a02, a03);
        Store(outputs, b, j + 1, a10, a11, a12, a13);
        Store(outputs, b, j + 2, a20, a21, a22, a23);
        Store(outputs, b, j + 3, a30, a31, a32, a33);
    }

    /// <summary>
    /// <see cref="Block4x4"/> with 512-bit vectors and without bounds checks (the loop bound is the row length, which
    /// every row and input share, checked by the caller): 16 accumulators plus 8 loaded vectors fit AVX-512's 32
    /// registers, where the <see cref="Vector{T}"/> version (256-bit, checked loads) runs ~1.4x slower on this VM.
    /// Both stay: without AVX-512 (<c>DOTNET_EnableAVX512=0</c>), <see cref="Vector512{T}"/> is emulated and this
    /// kernel runs ~2x slower than <see cref="Block4x4"/> (51 ms vs 25 ms per batch of 32).
    /// </summary>
    private static void Block4x4Wide(float[][] rows, int j, IReadOnlyList<float[]> inputs, int b, float[][] outputs)
    {
        var n = (nuint)rows[j].Length;
        ref var r0 = ref MemoryMarshal.GetArrayDataReference(rows[j]);
        ref var r1 = ref MemoryMarshal.GetArrayDataReference(rows[j + 1]);
        ref var r2 = ref MemoryMarshal.GetArrayDataReference(rows[j + 2]);
        ref var r3 = ref MemoryMarshal.GetArrayDataReference(rows[j + 3]);
        ref var x0 = ref MemoryMarshal.GetArrayDataReference(inputs[b]);
        ref var x1 = ref MemoryMarshal.GetArrayDataReference(inputs[b + 1]);
        ref var x2 = ref MemoryMarshal.GetArrayDataReference(inputs[b + 2]);
        ref var x3 = ref MemoryMarshal.GetArrayDataReference(inputs[b + 3]);
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (nuint i = 0; i < n; i += (nuint)Vector512<float>.Count)
        {
            var y0 = Vector512.LoadUnsafe(ref x0, i);
            var y1 = Vector512.LoadUnsafe(ref x1, i);
            var y2 = Vector512.LoadUnsafe(ref x2, i);
            var y3 = Vector512.LoadUnsafe(ref x3, i);
            var v = Vector512.LoadUnsafe(ref r0, i);
            a00 = Vector512.FusedMultiplyAdd(v, y0, a00); a01 = Vector512.FusedMultiplyAdd(v, y1, a01);
            a02 = Vector512.FusedMultiplyAdd(v, y2, a02); a03 = Vector512.FusedMultiplyAdd(v, y3, a03);
            v = Vector512.LoadUnsafe(ref r1, i);
            a10 = Vector512.FusedMultiplyAdd(v, y0, a10); a11 = Vector512.FusedMultiplyAdd(v, y1, a11);
            a12 = Vector512.FusedMultiplyAdd(v, y2, a12); a13 = Vector512.FusedMultiplyAdd(v, y3, a13);
            v = Vector512.LoadUnsafe(ref r2, i);
            a20 = Vector512.FusedMultiplyAdd(v, y0, a20); a21 = Vector512.FusedMultiplyAdd(v, y1, a21);
            a22 = Vector512.FusedMultiplyAdd(v, y2, a22); a23 = Vector512.FusedMultiplyAdd(v, y3, a23);
            v = Vector512.LoadUnsafe(ref r3, i);
            a30 = Vector512.FusedMultiplyAdd(v, y0, a30); a31 = Vector512.FusedMultiplyAdd(v, y1, a31);
            a32 = Vector512.FusedMultiplyAdd(v, y2, a32); a33 = Vector512.FusedMultiplyAdd(v, y3, a33);
        }
        StoreWide(outputs, b, j, a00, a01, a02, a03);
        StoreWide(outputs, b, j + 1, a10, a11, a12, a13);
        StoreWide(outputs, b, j + 2, a20, a21, a22, a23);
        StoreWide(outputs, b, j + 3, a30, a31, a32, a33);
    }

    private static void StoreWide(float[][] outputs, int b, int j, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3)
    {
        outputs[b][j] = Vector512.Sum(s0);
        outputs[b + 1][j] = Vector512.Sum(s1);
        outputs[b + 2][j] = Vector512.Sum(s2);
        outputs[b + 3][j] = Vector512.Sum(s3);
    }

    private static void Store(float[][] outputs, int b, int j, Vector<float> s0, Vector<float> s1, Vector<float> s2, Vector<float> s3)
    {
        outputs[b][j] = Vector.Sum(s0);
        outputs[b + 1][j] = Vector.Sum(s1);
        outputs[b + 2][j] = Vector.Sum(s2);
        outputs[b + 3][j] = Vector.Sum(s3);
    }

    /// <summary>
    /// <c>W</c> repacked into panels of 16 rows stored column by column (<c>panel[k * 16 + i] = W[16p + i][k]</c>), the
    /// layout a GEMV streams best. Only the benchmark's reference line uses it; the model runs on the rows.
    /// </summary>
    public static float[][] PackPanels(float[][] rows)
    {
        var dim = rows.Length;
        var panels = new float[dim / 16][];
        for (var p = 0; p < panels.Length; p++)
        {
            var panel = panels[p] = new float[dim * 16];
            for (var i = 0; i < 16; i++)
            {
                var row = rows[p * 16 + i];
                for (var k = 0; k < dim; k++)
                    panel[k * 16 + i] = row[k];
            }
        }
        return panels;
    }

    /// <summary>
    /// <c>y = W x</c> over <see cref="PackPanels"/>' panels: one contiguous stream per 16 outputs, four independent
    /// accumulators. Needs 512-bit vectors and a dimension that is a multiple of 16 (the caller checks).
    /// </summary>
    public static float[] PanelGemv(float[][] panels, float[] x)
    {
        var dim = x.Length;
        if (panels.Length * 16 != dim)
            throw new ArgumentException($"input has {x.Length} values; the panels take {panels.Length * 16}.", nameof(x));
        var y = new float[dim];
        ref var xs = ref MemoryMarshal.GetArrayDataReference(x);
        for (var p = 0; p < panels.Length; p++)
        {
            ref var w = ref MemoryMarshal.GetArrayDataReference(panels[p]);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (nuint k = 0; k < (nuint)dim; k += 4)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref w, k * 16), Vector512.Create(Unsafe.Add(ref xs, k)), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref w, k * 16 + 16), Vector512.Create(Unsafe.Add(ref xs, k + 1)), a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref w, k * 16 + 32), Vector512.Create(Unsafe.Add(ref xs, k + 2)), a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref w, k * 16 + 48), Vector512.Create(Unsafe.Add(ref xs, k + 3)), a3);
            }
            (a0 + a1 + (a2 + a3)).CopyTo(y, p * 16);
        }
        return y;
    }

    /// <summary>A deterministic input vector.</summary>
    public static float[] CreateInput(int dim, int seed)
    {
        var random = new Random(seed);
        var x = new float[dim];
        for (var i = 0; i < dim; i++)
            x[i] = (float)(random.NextDouble() * 2 - 1);
        return x;
    }
}
