namespace Serve.Tests;

internal static class TestUtil
{
    /// <summary>Polls a condition that another thread makes true, failing after a generous bound instead of hanging.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}");
            await Task.Delay(2);
        }
    }
}
