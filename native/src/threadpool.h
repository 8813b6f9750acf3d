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
  // Calls fn(begin, end) over [0, n) in chunks of `chunk`, handed out one at a time to whichever
  // thread is running: the caller starts at once, and a worker the OS has not scheduled yet
  // (a shared or oversubscribed machine) delays nothing, since its chunks go to the others.
  void run_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn);

 private:
  enum Kind : int { kEach, kChunks };
  void worker_loop(int ith);
  void take_chunks();  // claims and runs chunks of the open job until none are left

  int n_threads_;
  std::vector<std::thread> workers_;
  // The job of the latest generation; written and read under mutex_.
  Kind kind_ = kEach;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // kEach: workers yet to finish
  // kChunks: the job below may be read only by a thread that counted itself in `inside_` and
  // then saw `open_`; the caller closes the job and waits for `inside_` to drain before
  // returning, so no worker touches a finished job.
  const std::function<void(int64_t, int64_t)>* chunk_job_ = nullptr;
  int64_t chunk_n_ = 0, chunk_size_ = 1, n_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int64_t> done_chunks_{0};
  std::atomic<int> inside_{0};
  std::atomic<bool> open_{false};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
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
