using System.Numerics;
using System.Numerics.Tensors;

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
            outputs[b] = new float[dim];
        var blocked = count >= 4 && dim % 4 == 0 && dim % Vector<float>.Count == 0 ? count - count % 4 : 0;
        for (var j = 0; j < dim; j++)
        {
            if (blocked > 0 && j % 4 == 0)
            {
                for (var b = 0; b < blocked; b += 4)
                    Block4x4(rows, j, inputs, b, outputs);
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

    private static void Store(float[][] outputs, int b, int j, Vector<float> s0, Vector<float> s1, Vector<float> s2, Vector<float> s3)
    {
        outputs[b][j] = Vector.Sum(s0);
        outputs[b + 1][j] = Vector.Sum(s1);
        outputs[b + 2][j] = Vector.Sum(s2);
        outputs[b + 3][j] = Vector.Sum(s3);
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
