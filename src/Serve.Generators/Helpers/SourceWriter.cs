using System.Text;

namespace Serve.Generators.Helpers
{
    /// <summary>
    /// Writes C# text with four-space indentation and '\n' line endings, so the output is the same on every machine.
    /// </summary>
    internal sealed class SourceWriter
    {
        private const string IndentUnit = "    ";

        private readonly StringBuilder _text = new();
        private int _indent;

        public void Indent() => _indent++;

        public void Unindent() => _indent--;

        public void OpenBlock()
        {
            WriteLine("{");
            _indent++;
        }

        public void CloseBlock(string suffix = "")
        {
            _indent--;
            WriteLine("}" + suffix);
        }

        public void WriteLine() => _text.Append('\n');

        public void WriteLine(string line)
        {
            if (line.Length == 0)
            {
                _text.Append('\n');
                return;
            }
            for (var i = 0; i < _indent; i++)
                _text.Append(IndentUnit);
            _text.Append(line).Append('\n');
        }

        /// <summary>Writes a multi-line block (typically a raw string literal), indenting every line.</summary>
        public void WriteLines(string text)
        {
            foreach (var line in text.Replace("\r\n", "\n").Split('\n'))
                WriteLine(line.TrimEnd());
        }

        public override string ToString() => _text.ToString();
    }
}
