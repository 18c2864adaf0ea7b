#!/usr/bin/env bash
# Runs the BenchmarkDotNet suite in Release. Every benchmark is first run once and its result checked (the smoke
# check); a broken benchmark stops the run before anything is measured.
#   benchmarks/run.sh                                   all benchmarks (--filter '*')
#   benchmarks/run.sh --filter '*Handle_CallAsync*'     arguments, when given, replace --filter '*'
#   benchmarks/run.sh --smoke                           only the smoke check
#   benchmarks/run.sh --batching                        the batching load test (BatchingLoad.cs), not BenchmarkDotNet
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
artifacts="$root/benchmarks/BenchmarkDotNet.Artifacts"
cd "$root"
if [ "$#" -eq 0 ]; then
  set -- --filter '*'
fi
dotnet run -c Release --project benchmarks/Serve.Benchmarks -- --artifacts "$artifacts" "$@"
echo
echo "Results: $artifacts/results/ (the *-report-github.md table is what benchmarks/RESULTS.md quotes)"
echo "Log:     $artifacts/*.log"
