// Flags shared by several commands. Command-specific flags live in their cmd_*.cc file.
// Every flag here is listed in the `flags` of each command that reads it (its --help).
#include <gflags/gflags.h>

DEFINE_bool(quiet, false, "Only warnings and errors on stderr; no progress bars.");
DEFINE_bool(verbose, false, "Debug logging on stderr.");
DEFINE_string(model, "",
              "Model file: a GGUF (first shard of a split GGUF) or a .sluice archive. Empty: the "
              "synthetic demo model.");
DEFINE_string(ram, "",
              "RAM budget for the whole process (e.g. 12G): dense weights, KV cache and the expert "
              "cache must fit. 0: no limit (the expert cache holds every expert). Empty: half of "
              "the memory this process may use (physical RAM, or the cgroup's limit when lower). "
              "diffuse: the whole process's budget, weights streamed within it (activations, "
              "program and weights; the plan is printed); empty: weights mapped, no budget.");
DEFINE_int32(threads, 0, "Compute threads. 0: one per core.");
DEFINE_string(io, "auto",
              "Expert read backend: uring (io_uring + O_DIRECT), pread (worker pool), or auto "
              "(probe io_uring, fall back to pread with a log line saying why).");
DEFINE_int32(queue_depth, 16, "Reads in flight at most (io_uring queue depth / pread workers).");
DEFINE_string(cache_policy, "lru",
              "Expert cache eviction policy: lru or lfu (frequency-aware). serve and bench "
              "--serve default to lfu: several conversations at once churn an LRU cache.");
DEFINE_bool(mlock, false, "mlock the expert cache slots and the dense weights.");
DEFINE_bool(json, false, "Print results as JSON on stdout.");
DEFINE_string(out, "", "Output file.");
DEFINE_string(prompt, "",
              "Prompt text (run: \"-\" reads it from stdin; tokenize: the text to encode).");
DEFINE_string(file, "", "Read the text from this file instead of --prompt (\"-\": stdin).");
