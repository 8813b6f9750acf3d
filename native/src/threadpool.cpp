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
    : n_threads_(std::max(1, n_threads)), runs_(size_t(n_threads_)), done_(size_t(n_threads_)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    publish(JobView{next_gen(), kEach, nullptr, nullptr, 0, 1, 0}, /*stop=*/true);
  }
  for (auto& t : workers_) t.join();
}

uint32_t ThreadPool::next_gen() {
  if (++gen_ == 0) ++gen_;  // 0 is every cursor's and report's first tag: never a job's
  return gen_;
}

void ThreadPool::publish(const JobView& v, bool stop) {
  // Seqlock writer: an odd sequence while the fields change, so a worker still reading the
  // previous job's line (it saw that job late) sees a torn read and waits for this one.
  const uint64_t seq = 2 * uint64_t(v.gen);
  job_.seq.store(seq - 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  job_.kind.store(v.kind, std::memory_order_relaxed);
  job_.each.store(v.each, std::memory_order_relaxed);
  job_.chunks.store(v.chunks, std::memory_order_relaxed);
  job_.n.store(v.n, std::memory_order_relaxed);
  job_.chunk.store(v.chunk, std::memory_order_relaxed);
  job_.n_chunks.store(v.n_chunks, std::memory_order_relaxed);
  job_.stop.store(stop, std::memory_order_relaxed);
  // Sequentially consistent with the sleepers_ increment in wait_for_job: either this load sees
  // the sleeper, or the sleeper's check of the sequence (under mutex_) sees the new job.
  job_.seq.store(seq, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(mutex_); }  // a sleeper between its check and its wait
    wake_.notify_all();
  }
}

uint64_t ThreadPool::wait_for_job(uint64_t seen) {
  const auto ready = [seen](uint64_t s) { return s != seen && (s & 1) == 0; };
  const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
  for (int spins = 1;; ++spins) {
    const uint64_t s = job_.seq.load(std::memory_order_acquire);
    if (ready(s)) return s;
    cpu_relax();
    if (spins % 64 == 0 && std::chrono::steady_clock::now() > spin_until) break;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  uint64_t s = 0;
  wake_.wait(lock, [&] { return ready(s = job_.seq.load(std::memory_order_seq_cst)); });
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return s;
}

void ThreadPool::worker_loop(int ith) {
  if (g_pin) pin_current_thread(ith % std::max(1, cpu_features().logical_cores));
  uint64_t seen = 0;
  for (;;) {
    const uint64_t s = wait_for_job(seen);
    // Seqlock reader: the fields count only if the sequence did not move while they were read.
    JobView v{};
    v.gen = uint32_t(s >> 1);
    v.kind = Kind(job_.kind.load(std::memory_order_relaxed));
    v.each = job_.each.load(std::memory_order_relaxed);
    v.chunks = job_.chunks.load(std::memory_order_relaxed);
    v.n = job_.n.load(std::memory_order_relaxed);
    v.chunk = job_.chunk.load(std::memory_order_relaxed);
    v.n_chunks = job_.n_chunks.load(std::memory_order_relaxed);
    const bool stop = job_.stop.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (job_.seq.load(std::memory_order_relaxed) != s) continue;  // a newer job: wait for it
    seen = s;
    if (stop) return;
    uint64_t report = 1;
    if (v.kind == kEach) {
      (*v.each)(ith, n_threads_);
    } else {
      report = uint64_t(take_chunks(ith, v));
    }
    done_[size_t(ith)].word.store((uint64_t(v.gen) << 32) | report, std::memory_order_release);
  }
}

namespace {

constexpr int64_t kStale = -2;  // claim_chunk(): the claimer's job is over
constexpr int64_t kMaxChunks = 0xffff;  // a run's front and back are 16 bits each

// Claims one chunk of thread t's run for job gen: the front one (owner) or the back one
// (thief); -1 when the run is empty, kStale when job gen is no longer the published one (a
// worker that saw it late). A word tagged with another generation has not been touched in
// this job: its state is the run's first one.
int64_t claim_chunk(std::atomic<uint64_t>& word, uint32_t gen, int t, int nth, int64_t n_chunks,
                    bool from_front, const std::atomic<uint64_t>& job_seq) {
  uint64_t cur = word.load(std::memory_order_acquire);
  for (;;) {
    uint64_t front, back;
    if (uint32_t(cur >> 32) == gen) {
      front = cur & 0xffff;
      back = (cur >> 16) & 0xffff;
    } else if (job_seq.load(std::memory_order_acquire) != 2 * uint64_t(gen)) {
      return kStale;
    } else {
      front = uint64_t(t) * uint64_t(n_chunks) / uint64_t(nth);
      back = uint64_t(t + 1) * uint64_t(n_chunks) / uint64_t(nth);
    }
    if (front >= back) return -1;
    const uint64_t next = (uint64_t(gen) << 32) | ((from_front ? back : back - 1) << 16) |
                          (from_front ? front + 1 : front);
    if (word.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                   std::memory_order_acquire)) {
      return int64_t(from_front ? front : back - 1);
    }
  }
}

}  // namespace

int64_t ThreadPool::take_chunks(int ith, const JobView& v) {
  // A claim succeeds only while the job is unfinished (its caller waits for every claimed
  // chunk), so the job's function is alive whenever it is called here. A worker that saw the
  // job late finds every run empty (each one with chunks was claimed from, so tagged, before
  // the job could finish) or the job no longer published.
  int64_t done = 0;
  for (int step = 0; step < n_threads_; ++step) {  // own run first, then the others' in turn
    const int t = (ith + step) % n_threads_;
    std::atomic<uint64_t>& word = runs_[size_t(t)].word;
    for (;;) {
      const int64_t c = claim_chunk(word, v.gen, t, n_threads_, v.n_chunks, step == 0, job_.seq);
      if (c == kStale) return done;
      if (c < 0) break;
      const int64_t begin = c * v.chunk;
      (*v.chunks)(begin, std::min(v.n, begin + v.chunk));
      ++done;
    }
  }
  return done;
}

void ThreadPool::wait_done(uint32_t gen, int64_t want) {
  for (;;) {
    int64_t sum = 0, reported = 0;
    for (int t = 1; t < n_threads_; ++t) {
      const uint64_t w = done_[size_t(t)].word.load(std::memory_order_acquire);
      if (uint32_t(w >> 32) == gen) {
        sum += int64_t(w & 0xffffffffu);
        ++reported;
      }
    }
    // (>= rather than ==: were a chunk ever run twice, a wrong result beats a hang)
    if (want < 0 ? reported == n_threads_ - 1 : sum >= want) return;
    cpu_relax();
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  const JobView v{next_gen(), kEach, &fn, nullptr, 0, 1, 0};
  publish(v);
  fn(0, n_threads_);
  wait_done(v.gen, -1);
}

void ThreadPool::run_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  chunk = std::max<int64_t>({int64_t(1), chunk, (n + kMaxChunks - 1) / kMaxChunks});
  if (n_threads_ == 1 || chunk >= n) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  const JobView v{next_gen(), kChunks, nullptr, &fn, n, chunk, (n + chunk - 1) / chunk};
  publish(v);
  const int64_t mine = take_chunks(0, v);
  // Every chunk is claimed; the workers' reports add up to the rest once they have run.
  wait_done(v.gen, v.n_chunks - mine);
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
