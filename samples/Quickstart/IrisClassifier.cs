using System.Globalization;
using Serve;

namespace Quickstart;

// 4. A small real model: multinomial logistic regression on Fisher's Iris data set, trained at replica start-up.
// Plain C#, deterministic (zero-initialised weights, full-batch gradient descent, a fixed number of epochs).
[Deployment(NumReplicas = 2)]
public partial class IrisClassifier
{
    public static readonly string[] Species = ["setosa", "versicolor", "virginica"];
    private const int Features = 4;
    private const int Epochs = 2000;
    private const double LearningRate = 0.5;

    private readonly double[] _mean = new double[Features];
    private readonly double[] _std = new double[Features];
    private readonly double[,] _weights = new double[Species.Length, Features + 1]; // last column: bias
    private readonly double _trainingAccuracy;
    private readonly int _trainingRows;

    public IrisClassifier(string dataPath)
    {
        var (x, y) = Load(dataPath);
        _trainingRows = x.Length;
        Standardize(x);
        Train(x, y);
        var correct = 0;
        for (var i = 0; i < x.Length; i++)
            if (ArgMax(Probabilities(x[i])) == y[i])
                correct++;
        _trainingAccuracy = (double)correct / x.Length;
    }

    public IrisPrediction Call(double sepalLength, double sepalWidth, double petalLength, double petalWidth)
    {
        double[] raw = [sepalLength, sepalWidth, petalLength, petalWidth];
        var z = new double[Features];
        for (var j = 0; j < Features; j++)
            z[j] = (raw[j] - _mean[j]) / _std[j];
        var p = Probabilities(z);
        var probabilities = new Dictionary<string, double>();
        for (var k = 0; k < Species.Length; k++)
            probabilities[Species[k]] = Math.Round(p[k], 4);
        return new IrisPrediction(Species[ArgMax(p)], probabilities);
    }

    public double TrainingAccuracy() => _trainingAccuracy;

    public int TrainingRows() => _trainingRows;

    private static (double[][] X, int[] Y) Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Iris data set not found at '{path}'.", path);
        var x = new List<double[]>();
        var y = new List<int>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            if (string.IsNullOrWhiteSpace(line))
                continue;
            var cells = line.Split(',');
            var label = cells.Length == 5 ? Array.IndexOf(Species, cells[4].Trim()) : -1;
            if (label < 0)
                throw new FormatException($"Unexpected line in '{path}': {line}");
            x.Add([.. cells.Take(Features).Select(c => double.Parse(c, CultureInfo.InvariantCulture))]);
            y.Add(label);
        }
        return ([.. x], [.. y]);
    }

    private void Standardize(double[][] x)
    {
        for (var j = 0; j < Features; j++)
        {
            _mean[j] = x.Average(r => r[j]);
            _std[j] = Math.Sqrt(x.Average(r => (r[j] - _mean[j]) * (r[j] - _mean[j])));
            if (_std[j] == 0)
                _std[j] = 1;
            foreach (var r in x)
                r[j] = (r[j] - _mean[j]) / _std[j];
        }
    }

    private void Train(double[][] x, int[] y)
    {
        var n = x.Length;
        var gradient = new double[Species.Length, Features + 1];
        for (var epoch = 0; epoch < Epochs; epoch++)
        {
            Array.Clear(gradient);
            for (var i = 0; i < n; i++)
            {
                var p = Probabilities(x[i]);
                for (var k = 0; k < Species.Length; k++)
                {
                    var error = p[k] - (y[i] == k ? 1 : 0);
                    for (var j = 0; j < Features; j++)
                        gradient[k, j] += error * x[i][j];
                    gradient[k, Features] += error;
                }
            }
            for (var k = 0; k < Species.Length; k++)
                for (var j = 0; j <= Features; j++)
                    _weights[k, j] -= LearningRate * gradient[k, j] / n;
        }
    }

    private double[] Probabilities(double[] z)
    {
        var logits = new double[Species.Length];
        for (var k = 0; k < Species.Length; k++)
        {
            logits[k] = _weights[k, Features];
            for (var j = 0; j < Features; j++)
                logits[k] += _weights[k, j] * z[j];
        }
        var max = logits.Max();
        var sum = 0.0;
        for (var k = 0; k < logits.Length; k++)
            sum += logits[k] = Math.Exp(logits[k] - max);
        for (var k = 0; k < logits.Length; k++)
            logits[k] /= sum;
        return logits;
    }

    private static int ArgMax(double[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
            if (values[i] > values[best])
                best = i;
        return best;
    }
}

public sealed record IrisPrediction(string Species, IReadOnlyDictionary<string, double> Probabilities);
