// A persistent pool of worker threads. Kernels split their work with parallel_for (chunks of a
// range, handed out dynamically) or run(fn) (fn(ith, nth) called once per thread, the caller
// being thread 0). Workers spin briefly between jobs before sleeping, so back-to-back kernel
// calls in a decode step do not pay a wake-up each.
//
// A decode step is hundreds of jobs of 2-20 microseconds, so what a job costs to start and to
// finish is counted in cache lines passed between cores. Each line here has one writer per
// job: the caller writes the job's line, each worker its own run cursor (claims) and its own
// done line. Starting a job is one line to every worker; finishing it, one line from each.
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
  // What a worker copies out of the job line once it has seen a new job.
  struct JobView {
    uint32_t gen;
    Kind kind;
    const std::function<void(int, int)>* each;
    const std::function<void(int64_t, int64_t)>* chunks;
    int64_t n, chunk, n_chunks;
  };

  void worker_loop(int ith);
  // Writes job v's fields and publishes it (seqlock: odd sequence while writing), waking any
  // worker that went to sleep. `stop` ends every worker instead.
  void publish(const JobView& v, bool stop = false);
  // Spins, then sleeps, until the job sequence is a published one other than `seen`.
  uint64_t wait_for_job(uint64_t seen);
  // Claims and runs chunks of job v until none are left; returns how many it ran.
  int64_t take_chunks(int ith, const JobView& v);
  // Waits until the workers' done lines for generation gen add up to `want`; for a kEach job
  // (want < 0) until every worker has reported.
  void wait_done(uint32_t gen, int64_t want);

  // The next job's generation (never 0); under run_mutex_.
  uint32_t next_gen();

  int n_threads_;
  std::vector<std::thread> workers_;
  uint32_t gen_ = 0;  // the latest job's generation

  // The job line, written by the caller only between jobs (no worker can be inside one then).
  // seq is 2 * generation once published, odd while the fields are being written.
  struct alignas(64) JobLine {
    std::atomic<uint64_t> seq{0};
    std::atomic<int> kind{kEach};
    std::atomic<const std::function<void(int, int)>*> each{nullptr};
    std::atomic<const std::function<void(int64_t, int64_t)>*> chunks{nullptr};
    std::atomic<int64_t> n{0}, chunk{1}, n_chunks{0};
    std::atomic<bool> stop{false};
  };
  JobLine job_;
  // Thread t's run of a chunked job, generation (high 32 bits), back (16) and front (16) in one
  // word: a claim is one compare-and-swap. A word tagged with an older generation stands for
  // the run's first state in the current job, [t * n_chunks / n, (t + 1) * n_chunks / n), so no
  // one writes it between jobs: the owner's claims stay in its own cache. The owner claims
  // from the front and thieves from the back, so the owner's stream stays contiguous and a
  // thief only takes what the owner would have reached last.
  struct alignas(64) RunCursor {
    std::atomic<uint64_t> word{0};
  };
  std::vector<RunCursor> runs_;
  // Worker t's report for its latest job: generation (high 32 bits) and chunks it ran (low 32;
  // 1 for a kEach job). Written once per job, by that worker only.
  struct alignas(64) DoneLine {
    std::atomic<uint64_t> word{0};
  };
  std::vector<DoneLine> done_;
  alignas(64) std::atomic<int> sleepers_{0};  // workers blocked on wake_: only then does publish lock
  std::mutex mutex_;  // for wake_ only: the job itself is published through job_.seq
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
