namespace Serve.Onnx.Tests;

/// <summary>
/// Writes small ONNX models in protobuf by hand (the onnx Python package is not available here): one <c>Add</c> node,
/// <c>y = x + x</c>, with input <c>x</c> of element type float and shape <c>[batch, 4]</c>.
/// </summary>
internal static class TinyOnnx
{
    public static byte[] Doubler()
    {
        var dims = Message(1, Message(2, Text("batch"))).Concat(Message(1, Varint(1, 4))).ToArray();
        byte[] Tensor(string name) =>
            Concat(Text(1, name), Message(2, Message(1, Concat(Varint(1, 1 /* FLOAT */), Message(2, dims)))));
        var node = Concat(Text(1, "x"), Text(1, "x"), Text(2, "y"), Text(3, "add"), Text(4, "Add"));
        var graph = Concat(Message(1, node), Text(2, "doubler"), Message(11, Tensor("x")), Message(12, Tensor("y")));
        var opset = Concat(Text(1, ""), Varint(2, 13));
        return Concat(Varint(1, 8 /* IR version */), Text(2, "serve-tests"), Message(7, graph), Message(8, opset));
    }

    /// <summary>Writes the model to a temporary file and returns its path.</summary>
    public static string WriteDoubler()
    {
        var path = Path.Combine(Path.GetTempPath(), $"serve-doubler-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, Doubler());
        return path;
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static byte[] Text(int field, string value) => Message(field, System.Text.Encoding.UTF8.GetBytes(value));

    private static byte[] Text(string value) => System.Text.Encoding.UTF8.GetBytes(value);

    private static byte[] Message(int field, byte[] body) => Concat(Raw((ulong)(field << 3 | 2)), Raw((ulong)body.Length), body);

    private static byte[] Varint(int field, long value) => Concat(Raw((ulong)(field << 3)), Raw((ulong)value));

    private static byte[] Raw(ulong value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value != 0 ? (byte)(b | 0x80) : b);
        }
        while (value != 0);
        return bytes.ToArray();
    }
}
