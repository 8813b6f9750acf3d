// A persistent pool of worker threads. Kernels split their work with parallel_for (chunks of a
// range, handed out dynamically) or run(fn) (fn(ith, nth) called once per thread, the caller
// being thread 0). Workers spin briefly between jobs before sleeping, so back-to-back kernel
// calls in a decode step do not pay a wake-up each.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cromwell {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(ith, n_threads) on every thread and returns when all have finished.
  void run(const std::function<void(int ith, int nth)>& fn);
  // Calls fn(begin, end) over [0, n) in chunks of `chunk`. Each thread owns a contiguous run of
  // chunks and takes them in order, so it streams one region of memory front to back (the
  // hardware prefetcher and the kernels' own prefetch run ahead across chunk boundaries); a
  // thread done with its own run takes chunks from the others' runs, so a worker the OS has not
  // scheduled yet (a shared or oversubscribed machine) delays nothing.
  void run_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn);

 private:
  enum Kind : int { kEach, kChunks };
  void worker_loop(int ith);
  void take_chunks(int ith);  // claims and runs chunks of the open job until none are left

  int n_threads_;
  std::vector<std::thread> workers_;
  // Starts the job whose fields are written, and wakes any worker that went to sleep.
  void publish(Kind kind);
  // Spins, then sleeps, until state_ differs from `seen`; returns the new state.
  uint64_t wait_for_job(uint64_t seen);

  // The latest job: its generation (bits 1 and up) and kind (bit 0) in one word, so a spinning
  // worker learns both from one load, with no lock. A kEach job's function may be read by a
  // worker that saw its generation: the caller waits for every worker to finish it (pending_)
  // before writing the next.
  std::atomic<uint64_t> state_{0};
  std::atomic<const std::function<void(int, int)>*> job_{nullptr};
  std::atomic<int> pending_{0};   // kEach: workers yet to finish
  std::atomic<int> sleepers_{0};  // workers blocked on wake_: only then does publish lock
  // kChunks: the job below may be read only by a thread that counted itself in `inside_` and
  // then saw `open_`; the caller closes the job and waits for `inside_` to drain before
  // returning, so no worker touches a finished job.
  const std::function<void(int64_t, int64_t)>* chunk_job_ = nullptr;
  int64_t chunk_n_ = 0, chunk_size_ = 1, n_chunks_ = 0;
  // Thread t's run is chunks [t * n_chunks_ / n, (t + 1) * n_chunks_ / n). Its owner claims
  // from the front and thieves from the back, so the owner's stream stays contiguous and a thief
  // only takes what the owner would have reached last. Front (low 32 bits) and back (high 32)
  // share one atomic word, so a claim is one compare-and-swap; one cache line per run.
  struct alignas(64) RunCursor {
    std::atomic<uint64_t> front_back{0};
  };
  std::vector<RunCursor> runs_;
  std::atomic<int64_t> done_chunks_{0};
  std::atomic<int> inside_{0};
  std::atomic<bool> open_{false};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;  // for wake_ only: the job itself is published through state_
  std::condition_variable wake_;
  std::mutex run_mutex_;  // one job at a time, whichever Python thread submits it
};

// The process-wide pool every kernel uses. Default size: the physical core count.
ThreadPool& thread_pool();
// Recreates the pool; n <= 0 means the default. A kernel already running on the old pool through
// parallel_for finishes there (the old pool lives until it is done).
void set_num_threads(int n);
int num_threads();
// Pin worker i to logical CPU i (best effort; a no-op where the OS refuses).
void set_pinning(bool pin);

// Splits [0, n) into up to 4 contiguous chunks per thread of at least min_per_thread items,
// handed out dynamically (run_chunks); fn may thus run several times on one thread. Fewer than
// 2 * min_per_thread items run on the caller alone.
void parallel_for(int64_t n, int64_t min_per_thread,
                  const std::function<void(int64_t begin, int64_t end)>& fn);

}  // namespace cromwell
