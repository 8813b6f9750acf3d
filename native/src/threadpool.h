// A persistent pool of worker threads. Kernels split their work with run(fn): fn(ith, nth) is
// called once per thread, the caller being thread 0. Workers spin briefly between jobs before
// sleeping, so back-to-back kernel calls in a decode step do not pay a wake-up each.
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

 private:
  void worker_loop(int ith);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex run_mutex_;  // one job at a time, whichever Python thread submits it
};

// The process-wide pool every kernel uses. Default size: the physical core count.
ThreadPool& thread_pool();
void set_num_threads(int n);  // recreates the pool; n <= 0 means the default
int num_threads();
// Pin worker i to logical CPU i (best effort; a no-op where the OS refuses).
void set_pinning(bool pin);

// Splits [0, n) into one contiguous range per thread; small n runs on the caller alone.
void parallel_for(int64_t n, int64_t min_per_thread,
                  const std::function<void(int64_t begin, int64_t end)>& fn);

}  // namespace cromwell
