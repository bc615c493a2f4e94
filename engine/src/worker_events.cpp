#include "arcly/worker_events.hpp"

#include <exception>
#include <mutex>
#include <thread>

#include "arcly/error.hpp"
#include "arcly/inbound.hpp"

namespace arcly {

std::string_view worker_state_name(WorkerState state) {
  switch (state) {
    case WorkerState::Started:
      return "started";
    case WorkerState::Stopped:
      return "stopped";
    case WorkerState::Failed:
      return "failed";
  }
  return "unknown";
}

void WorkerTally::add(WorkerState state) {
  switch (state) {
    case WorkerState::Started:
      started_.fetch_add(1, std::memory_order_relaxed);
      break;
    case WorkerState::Stopped:
      stopped_.fetch_add(1, std::memory_order_relaxed);
      break;
    case WorkerState::Failed:
      failed_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
}

WorkerCounts WorkerTally::counts() const {
  return {started_.load(std::memory_order_relaxed), stopped_.load(std::memory_order_relaxed),
          failed_.load(std::memory_order_relaxed)};
}

void run_workers(const IngestContext& ctx,
                 const std::vector<std::shared_ptr<InboundProtocol>>& workers, std::stop_token stop,
                 const WorkerObserver& observer, WorkerTally& tally) {
  std::stop_source inner;
  std::stop_callback forward(stop, [&inner] { inner.request_stop(); });
  std::mutex failure_mutex;
  std::string failure;

  auto report = [&](const InboundProtocol& worker, WorkerState state, std::string reason) {
    tally.add(state);
    if (!observer) return;
    try {
      observer(WorkerEvent{std::string(worker.name()), state, std::move(reason)});
    } catch (...) {
      // An observer is a logger; its failure must not change the worker's fate.
    }
  };
  auto failed = [&](const InboundProtocol& worker, const std::string& reason) {
    report(worker, WorkerState::Failed, reason);
    {
      std::lock_guard lock(failure_mutex);
      if (failure.empty()) {
        failure = "ingest worker '" + std::string(worker.name()) + "' failed";
        if (!reason.empty()) failure += ": " + reason;
      }
    }
    inner.request_stop();
  };

  {
    std::vector<std::jthread> threads;
    threads.reserve(workers.size());
    for (const auto& worker : workers) {
      auto run = [&, worker] {
        report(*worker, WorkerState::Started, {});
        try {
          worker->serve(ctx, inner.get_token());
        } catch (const std::exception& e) {
          failed(*worker, e.what());
          return;
        } catch (...) {
          failed(*worker, "unknown exception");
          return;
        }
        report(*worker, WorkerState::Stopped, {});
      };
      try {
        threads.emplace_back(std::move(run));
      } catch (const std::exception& e) {
        // No thread for this worker: the ones already running stop too (they watch
        // `inner`, not their jthread's own token), and serve() reports instead of
        // waiting forever.
        failed(*worker, std::string("could not be started: ") + e.what());
        break;
      }
    }
  }  // jthreads join here
  if (!failure.empty()) throw Error(Errc::WorkerFailed, failure);
}

}  // namespace arcly
