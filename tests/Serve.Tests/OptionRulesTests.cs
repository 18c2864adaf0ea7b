namespace Serve.Tests;

/// <summary>
/// OptionRules, the one table the runtime, the config loader and the generator check: every rule names a real option,
/// its default is the option's default, and that default is in range.
/// </summary>
public sealed class OptionRulesTests
{
    [Fact]
    public void EveryRuleNamesAnOptionAndItsDefaultIsTheOptionsDefault()
    {
        var options = new DeploymentOptions();
        var autoscaling = new AutoscalingOptions();
        foreach (var (name, rule) in OptionRules.All)
        {
            Assert.Equal(name, rule.Option);
            if (name == "Resources")
            {
                Assert.Empty(options.Resources);
                continue;
            }
            var (owner, propertyName) = name.StartsWith("Autoscaling.", StringComparison.Ordinal)
                ? ((object)autoscaling, name["Autoscaling.".Length..])
                : (options, name);
            var property = owner.GetType().GetProperty(propertyName);
            Assert.True(property is not null, $"rule {name} names no property of {owner.GetType().Name}");
            var value = property!.GetValue(owner);
            var actual = value switch
            {
                TimeSpan t => t.TotalSeconds,
                int i => i,
                double d => d,
                null => rule.Default, // InitialReplicas: null means MinReplicas
                _ => throw new InvalidOperationException($"{name} is a {value.GetType().Name}"),
            };
            Assert.True(rule.Default == actual, $"{name}: the rule's default {rule.Default} is not the option's {actual}");
            Assert.True(rule.Accepts(rule.Default), $"{name}: the default {rule.Default} is out of the rule's own range");
        }
    }

    [Fact]
    public void TheRuntimesPublicLimitsAreTheTablesLimits()
    {
        Assert.Equal(DeploymentOptions.MaxNumReplicas, OptionRules.NumReplicas.Max);
        Assert.Equal(DeploymentOptions.MaxNumReplicas, OptionRules.MinReplicas.Max);
        Assert.Equal(DeploymentOptions.MaxNumReplicas, OptionRules.MaxReplicas.Max);
        Assert.Equal(DeploymentOptions.MaxNumCpus, OptionRules.NumCpus.Max);
        Assert.Equal(DeploymentOptions.MaxNumGpus, OptionRules.NumGpus.Max);
        Assert.Equal(DeploymentOptions.MaxResourceAmount, OptionRules.ResourceAmount.Max);
        Assert.Equal(TimeSpan.FromMilliseconds(uint.MaxValue - 1), DeploymentOptions.MaxTimerDuration);
        Assert.Equal(DeploymentOptions.MaxTimerDuration.TotalSeconds, OptionRules.HealthCheckPeriod.Max);
    }
}
