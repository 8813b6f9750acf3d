#include "threadpool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "cpu_features.h"

namespace cromwell {
namespace {

// How long an idle worker spins before sleeping: long enough to cover the gap between the
// kernel calls of one decode step, short enough not to burn a shared core between requests.
constexpr auto kSpinTime = std::chrono::microseconds(200);

std::mutex g_pool_mutex;
// Shared so that a kernel running on the pool keeps it alive if another thread resizes it.
std::shared_ptr<ThreadPool> g_pool;
int g_requested_threads = 0;
bool g_pin = false;

void pin_current_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

inline void cpu_relax() { __builtin_ia32_pause(); }

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int ith) {
  if (g_pin) pin_current_thread(ith % std::max(1, cpu_features().logical_cores));
  uint64_t seen = 0;
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    for (int spins = 1; generation_.load(std::memory_order_acquire) == seen; ++spins) {
      cpu_relax();
      if (spins % 64 == 0 && std::chrono::steady_clock::now() > spin_until) break;
    }
    Kind kind;
    const std::function<void(int, int)>* job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      seen = generation_.load(std::memory_order_acquire);
      kind = kind_;
      job = job_;
    }
    if (stop_.load()) return;
    if (kind == kEach) {
      (*job)(ith, n_threads_);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    } else {
      take_chunks();
    }
  }
}

void ThreadPool::take_chunks() {
  inside_.fetch_add(1, std::memory_order_seq_cst);
  if (open_.load(std::memory_order_seq_cst)) {
    for (;;) {
      const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks_) break;
      const int64_t begin = c * chunk_size_;
      (*chunk_job_)(begin, std::min(chunk_n_, begin + chunk_size_));
      done_chunks_.fetch_add(1, std::memory_order_acq_rel);
    }
  }
  inside_.fetch_sub(1, std::memory_order_release);
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  pending_.store(n_threads_ - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    kind_ = kEach;
    job_ = &fn;
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  fn(0, n_threads_);
  while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
}

void ThreadPool::run_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(1, chunk);
  if (n_threads_ == 1 || chunk >= n) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  // No worker is inside a chunk job here (the previous one drained), so the fields are free.
  chunk_job_ = &fn;
  chunk_n_ = n;
  chunk_size_ = chunk;
  n_chunks_ = (n + chunk - 1) / chunk;
  next_chunk_.store(0, std::memory_order_relaxed);
  done_chunks_.store(0, std::memory_order_relaxed);
  open_.store(true, std::memory_order_seq_cst);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    kind_ = kChunks;
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  take_chunks();
  // Every chunk is claimed; wait for the ones still running on workers, then close the job.
  while (done_chunks_.load(std::memory_order_acquire) != n_chunks_) cpu_relax();
  open_.store(false, std::memory_order_seq_cst);
  while (inside_.load(std::memory_order_acquire) != 0) cpu_relax();
}

static std::shared_ptr<ThreadPool> pool_handle() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) {
    const int n = g_requested_threads > 0 ? g_requested_threads : cpu_features().physical_cores;
    g_pool = std::make_shared<ThreadPool>(n);
  }
  return g_pool;
}

ThreadPool& thread_pool() { return *pool_handle(); }

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  g_requested_threads = n;
  g_pool.reset();
}

int num_threads() { return thread_pool().size(); }

void set_pinning(bool pin) {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  g_pin = pin;
  g_pool.reset();
}

void parallel_for(int64_t n, int64_t min_per_thread,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const std::shared_ptr<ThreadPool> handle = pool_handle();
  ThreadPool& pool = *handle;
  const int64_t max_chunks = n / std::max<int64_t>(1, min_per_thread);
  if (pool.size() == 1 || max_chunks <= 1) {
    fn(0, n);
    return;
  }
  // A few chunks per thread: enough to even out a thread that starts late or runs slower.
  const int64_t n_chunks = std::min<int64_t>(max_chunks, int64_t(pool.size()) * 4);
  pool.run_chunks(n, (n + n_chunks - 1) / n_chunks, fn);
}

}  // namespace cromwell
