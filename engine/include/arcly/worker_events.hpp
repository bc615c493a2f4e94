// Per-worker lifecycle reporting for the ingest workers an engine runs (the
// seed's per-worker tracing): every worker reports Started when its thread
// begins serve(), then exactly one of Stopped (serve() returned) or Failed
// (serve() threw; `reason` is the error's message). A host logs these events
// and counts them; WorkerCounts is the engine's own tally.
//
// Threads: the observer is called on the worker's own thread, concurrently for
// different workers; it must not throw (a throw is swallowed) and must not call
// back into Engine::serve.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace arcly {

class InboundProtocol;
class IngestContext;

enum class WorkerState { Started, Stopped, Failed };

// "started", "stopped", "failed".
std::string_view worker_state_name(WorkerState state);

struct WorkerEvent {
  std::string worker;  // InboundProtocol::name()
  WorkerState state = WorkerState::Started;
  std::string reason;  // Failed only: what the worker threw
};

using WorkerObserver = std::function<void(const WorkerEvent&)>;

struct WorkerCounts {
  std::uint64_t started = 0;
  std::uint64_t stopped = 0;
  std::uint64_t failed = 0;
};

// The tally an engine keeps (relaxed atomics: counters, not synchronization).
class WorkerTally {
 public:
  void add(WorkerState state);
  WorkerCounts counts() const;

 private:
  std::atomic<std::uint64_t> started_{0};
  std::atomic<std::uint64_t> stopped_{0};
  std::atomic<std::uint64_t> failed_{0};
};

// Runs every worker on its own thread until all have returned; `stop` (or the
// first worker that fails) asks every worker to stop. Reports each worker's
// lifecycle to `observer` (may be empty) and `tally`. Rethrows the first failure
// as Error{WorkerFailed} naming the worker. Engine::serve is this, with the
// engine as the IngestContext.
void run_workers(const IngestContext& ctx,
                 const std::vector<std::shared_ptr<InboundProtocol>>& workers, std::stop_token stop,
                 const WorkerObserver& observer, WorkerTally& tally);

}  // namespace arcly
