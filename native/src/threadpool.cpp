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

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)), runs_(size_t(n_threads_)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  publish(kEach);
  for (auto& t : workers_) t.join();
}

void ThreadPool::publish(Kind kind) {
  // One publisher at a time (run_mutex_, or the destructor once no job can run).
  const uint64_t next = (((state_.load(std::memory_order_relaxed) >> 1) + 1) << 1) | uint64_t(kind);
  // Sequentially consistent with the sleepers_ increment in wait_for_job: either this load sees
  // the sleeper, or the sleeper's check of state_ (under mutex_) sees the new job.
  state_.store(next, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(mutex_); }  // a sleeper between its check and its wait
    wake_.notify_all();
  }
}

uint64_t ThreadPool::wait_for_job(uint64_t seen) {
  const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
  for (int spins = 1;; ++spins) {
    const uint64_t s = state_.load(std::memory_order_acquire);
    if (s != seen) return s;
    cpu_relax();
    if (spins % 64 == 0 && std::chrono::steady_clock::now() > spin_until) break;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  wake_.wait(lock, [&] { return state_.load(std::memory_order_seq_cst) != seen; });
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return state_.load(std::memory_order_acquire);
}

void ThreadPool::worker_loop(int ith) {
  if (g_pin) pin_current_thread(ith % std::max(1, cpu_features().logical_cores));
  uint64_t seen = 0;
  for (;;) {
    seen = wait_for_job(seen);
    if (stop_.load()) return;
    if (Kind(seen & 1) == kEach) {
      (*job_.load(std::memory_order_acquire))(ith, n_threads_);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    } else {
      take_chunks(ith);
    }
  }
}

namespace {

// Claims one chunk of a run: the front one (owner) or the back one (thief); -1 when it is empty.
int64_t claim_chunk(std::atomic<uint64_t>& front_back, bool from_front) {
  uint64_t cur = front_back.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t front = cur & 0xffffffffu, back = cur >> 32;
    if (front >= back) return -1;
    const uint64_t next = from_front ? cur + 1 : cur - (uint64_t(1) << 32);
    if (front_back.compare_exchange_weak(cur, next, std::memory_order_relaxed)) {
      return int64_t(from_front ? front : back - 1);
    }
  }
}

}  // namespace

void ThreadPool::take_chunks(int ith) {
  inside_.fetch_add(1, std::memory_order_seq_cst);
  if (open_.load(std::memory_order_seq_cst)) {
    int64_t done = 0;  // published once at the end: a shared counter per chunk would bounce
    for (int v = 0; v < n_threads_; ++v) {  // own run first, then the others' in turn
      std::atomic<uint64_t>& run = runs_[size_t((ith + v) % n_threads_)].front_back;
      for (int64_t c; (c = claim_chunk(run, v == 0)) >= 0; ++done) {
        const int64_t begin = c * chunk_size_;
        (*chunk_job_)(begin, std::min(chunk_n_, begin + chunk_size_));
      }
    }
    done_chunks_.fetch_add(done, std::memory_order_acq_rel);
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
  job_.store(&fn, std::memory_order_release);
  publish(kEach);
  fn(0, n_threads_);
  while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
}

void ThreadPool::run_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  // At most 2^31 chunks: a run's front and back share one 64-bit word.
  chunk = std::max<int64_t>({int64_t(1), chunk, (n >> 31) + 1});
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
  for (int t = 0; t < n_threads_; ++t) {
    const uint64_t front = uint64_t(t) * uint64_t(n_chunks_) / uint64_t(n_threads_);
    const uint64_t back = uint64_t(t + 1) * uint64_t(n_chunks_) / uint64_t(n_threads_);
    runs_[size_t(t)].front_back.store(front | (back << 32), std::memory_order_relaxed);
  }
  done_chunks_.store(0, std::memory_order_relaxed);
  open_.store(true, std::memory_order_seq_cst);
  publish(kChunks);
  take_chunks(0);
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
