using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Serve.Observability;

/// <summary>
/// Collects one <see cref="Meter"/>'s measurements with a <see cref="MeterListener"/> and writes them in the
/// Prometheus text exposition format (version 0.0.4): counters as <c>name_total</c>, histograms as
/// <c>_bucket</c>/<c>_sum</c>/<c>_count</c> (the unit <c>ms</c> becomes a <c>_ms</c> suffix), gauges as is; dots in
/// instrument names become underscores. Only the given meter is listened to, so two hosts in one process export
/// their own numbers.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    /// <summary>Histogram bucket upper bounds in milliseconds (Ray Serve's latency buckets).</summary>
    private static readonly double[] s_bounds = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000];

    private readonly Meter _meter;
    private readonly MeterListener _listener;
    private readonly ConcurrentDictionary<Instrument, InstrumentSeries> _instruments = new();
    private readonly object _scrapeLock = new();

    public PrometheusExporter(Meter meter)
    {
        _meter = meter;
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, _meter))
                    listener.EnableMeasurementEvents(instrument, _instruments.GetOrAdd(instrument, static i => new InstrumentSeries(i)));
            },
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((InstrumentSeries)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) => ((InstrumentSeries)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((InstrumentSeries)state!).Record(value, tags));
        _listener.Start();
    }

    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Observes the gauges now and writes every series.</summary>
    public string Scrape()
    {
        lock (_scrapeLock)
        {
            foreach (var series in _instruments.Values)
                series.BeginObservation();
            _listener.RecordObservableInstruments();
            var text = new StringBuilder();
            foreach (var series in _instruments.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
                series.Write(text);
            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private enum Kind
    {
        Counter,
        Gauge,
        Histogram,
    }

    /// <summary>
    /// One instrument's series, one per distinct tag set. Finding an existing series allocates nothing (a hash of the
    /// measurement's tags, then a comparison with the few series under that hash); a new tag set is copied once.
    /// </summary>
    private sealed class InstrumentSeries
    {
        private readonly ConcurrentDictionary<int, Series[]> _byHash = new();
        private readonly object _addLock = new();
        private readonly Kind _kind;
        private readonly string? _description;

        public InstrumentSeries(Instrument instrument)
        {
            _kind = instrument switch
            {
                Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double> => Kind.Counter,
                Histogram<long> or Histogram<int> or Histogram<double> => Kind.Histogram,
                _ => Kind.Gauge,
            };
            var name = Sanitize(instrument.Name);
            if (_kind == Kind.Histogram && instrument.Unit is { Length: > 0 } unit && !unit.StartsWith('{'))
                name += "_" + Sanitize(unit);
            Name = _kind == Kind.Counter ? name + "_total" : name;
            _description = instrument.Description;
        }

        public string Name { get; }

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var hash = Hash(tags);
            Series? series = null;
            if (_byHash.TryGetValue(hash, out var candidates))
            {
                foreach (var candidate in candidates)
                {
                    if (Same(candidate.Tags, tags))
                    {
                        series = candidate;
                        break;
                    }
                }
            }
            (series ?? Add(hash, tags)).Add(_kind, value);
        }

        private Series Add(int hash, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var owned = tags.ToArray();
            Array.Sort(owned, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
            lock (_addLock)
            {
                var existing = _byHash.TryGetValue(hash, out var candidates) ? candidates : [];
                foreach (var candidate in existing)
                {
                    if (Same(candidate.Tags, owned))
                        return candidate;
                }
                var series = new Series(_kind, owned);
                _byHash[hash] = [.. existing, series];
                return series;
            }
        }

        /// <summary>Gauges report only what the next observation says: replicas that are gone disappear.</summary>
        public void BeginObservation()
        {
            if (_kind != Kind.Gauge)
                return;
            lock (_addLock)
                _byHash.Clear();
        }

        public void Write(StringBuilder text)
        {
            var all = _byHash.Values.SelectMany(s => s).OrderBy(s => s.Labels, StringComparer.Ordinal).ToList();
            if (all.Count == 0)
                return;
            if (_description is { Length: > 0 })
                text.Append("# HELP ").Append(Name).Append(' ').Append(_description.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n');
            text.Append("# TYPE ").Append(Name).Append(' ').Append(_kind switch { Kind.Counter => "counter", Kind.Histogram => "histogram", _ => "gauge" }).Append('\n');
            foreach (var series in all)
                series.Write(text, Name, _kind);
        }

        // Cheap (no full string hashing on the measurement path) and order-independent, so the same tags in another
        // order find the same series; collisions only lengthen the short candidate list that Same() checks.
        private static int Hash(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var hash = tags.Length;
            foreach (var tag in tags)
                hash ^= Cheap(tag.Key) * 31 + (tag.Value is string s ? Cheap(s) : tag.Value?.GetHashCode() ?? 0);
            return hash;
        }

        private static int Cheap(string s) => s.Length == 0 ? 0 : (s.Length * 7919) ^ (s[0] << 8) ^ (s[^1] << 16) ^ s[s.Length / 2];

        private static bool Same(KeyValuePair<string, object?>[] owned, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (owned.Length != tags.Length)
                return false;
            foreach (var tag in tags)
            {
                var found = false;
                foreach (var candidate in owned)
                {
                    if (string.Equals(tag.Key, candidate.Key, StringComparison.Ordinal) && Equals(tag.Value, candidate.Value))
                    {
                        found = true;
                        break;
                    }
                }
                if (!found)
                    return false;
            }
            return true;
        }
    }

    /// <summary>One series' numbers, updated lock-free (a scrape may see a histogram mid-update, off by one call).</summary>
    private sealed class Series(Kind kind, KeyValuePair<string, object?>[] tags)
    {
        private readonly long[]? _buckets = kind == Kind.Histogram ? new long[s_bounds.Length + 1] : null;
        private double _value;

        public KeyValuePair<string, object?>[] Tags { get; } = tags;

        /// <summary>The label set as written: <c>{application="a",deployment="d"}</c>.</summary>
        public string Labels { get; } = Format(tags, null, null);

        public void Add(Kind kind, double value)
        {
            switch (kind)
            {
                case Kind.Gauge:
                    Interlocked.Exchange(ref _value, value);
                    break;
                case Kind.Counter:
                    AddToValue(value);
                    break;
                default:
                    var i = 0;
                    while (i < s_bounds.Length && value > s_bounds[i])
                        i++;
                    Interlocked.Increment(ref _buckets![i]);
                    AddToValue(value);
                    break;
            }
        }

        private void AddToValue(double value)
        {
            var current = Volatile.Read(ref _value);
            while (true)
            {
                var seen = Interlocked.CompareExchange(ref _value, current + value, current);
                if (seen.Equals(current))
                    return;
                current = seen;
            }
        }

        public void Write(StringBuilder text, string name, Kind kind)
        {
            var value = Volatile.Read(ref _value);
            if (kind != Kind.Histogram)
            {
                text.Append(name).Append(Labels).Append(' ').Append(Number(value)).Append('\n');
                return;
            }
            long cumulative = 0;
            for (var i = 0; i <= s_bounds.Length; i++)
            {
                cumulative += Volatile.Read(ref _buckets![i]);
                var le = i < s_bounds.Length ? Number(s_bounds[i]) : "+Inf";
                text.Append(name).Append("_bucket").Append(Format(Tags, "le", le)).Append(' ').Append(cumulative).Append('\n');
            }
            text.Append(name).Append("_sum").Append(Labels).Append(' ').Append(Number(value)).Append('\n');
            // The count is the +Inf bucket, so the two always agree in one scrape.
            text.Append(name).Append("_count").Append(Labels).Append(' ').Append(cumulative).Append('\n');
        }
    }

    private static string Format(KeyValuePair<string, object?>[] tags, string? extraName, string? extraValue)
    {
        if (tags.Length == 0 && extraName is null)
            return "";
        var text = new StringBuilder("{");
        var first = true;
        foreach (var tag in tags)
        {
            if (!first)
                text.Append(',');
            first = false;
            text.Append(Sanitize(tag.Key)).Append("=\"").Append(Escape(Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "")).Append('"');
        }
        if (extraName is not null)
        {
            if (!first)
                text.Append(',');
            text.Append(extraName).Append("=\"").Append(extraValue).Append('"');
        }
        return text.Append('}').ToString();
    }

    private static string Number(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    private static string Sanitize(string name)
    {
        var chars = name.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            var c = chars[i];
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_' || c == ':'))
                chars[i] = '_';
        }
        return new string(chars);
    }
}
