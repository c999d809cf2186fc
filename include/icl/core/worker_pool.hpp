/// @file
/// A persistent pool of worker threads that run the tasks of a round while the calling thread runs task 0
/// (the pool behind nn::BatchLoss; docs/core.md "Worker pool").
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "icl/core/error.hpp"

namespace icl {

/// A persistent set of worker threads that run the tasks 1..tasks-1 of a round while the calling thread
/// runs task 0. Workers are numbered 1..size(); worker w runs task w of every round that has more than w
/// tasks and sleeps on a condition variable otherwise, so threads are started once (grow) and reused by
/// every later round. Neither copyable nor movable (the workers refer to it): hold it through a pointer
/// to move it. Not thread-safe: one thread at a time calls grow(), run() and stop().
class WorkerPool {
 public:
  /// Starts a worker thread running its argument (the default is `std::thread(std::move(f))`); the
  /// returned thread must run the argument (a worker's loop, which returns when the pool is stopped).
  using Starter = std::function<std::thread(std::function<void()>)>;

  /// A pool without workers; `owner` prefixes the messages of grow()'s errors (e.g. "BatchLoss").
  explicit WorkerPool(std::string owner = "WorkerPool") : owner_(std::move(owner)) {}
  WorkerPool(const WorkerPool&) = delete;             ///< not copyable (the workers refer to it)
  WorkerPool& operator=(const WorkerPool&) = delete;  ///< not copyable (the workers refer to it)
  /// Stops and joins every worker.
  ~WorkerPool() { stop(); }

  /// Workers running.
  int size() const { return static_cast<int>(threads_.size()); }

  /// Starts workers until `count` are running (`start`, or std::thread when it is empty); never stops
  /// any. If a start throws or returns a thread that is not running, every worker is stopped and joined
  /// (the pool is then empty) and std::system_error is thrown with the original code
  /// (std::errc::invalid_argument for a thread that is not running) and a message naming the start
  /// ("<owner>: starting worker thread 2 of 3 failed (the 1 started were joined): ...").
  void grow(int count, const Starter& start = {}) {
    const int before = size();
    if (count <= before) return;
    threads_.reserve(static_cast<std::size_t>(count));  // the push_back below cannot throw
    while (size() < count) {
      const int w = size() + 1;
      try {
        std::function<void()> body = [this, w] { loop(w); };
        threads_.push_back(start ? start(std::move(body)) : std::thread(std::move(body)));
        if (!threads_.back().joinable()) {  // a custom starter that started nothing
          threads_.pop_back();
          throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                  "the thread starter returned a thread that is not running");
        }
      } catch (const std::system_error& e) {
        // destroying a joinable std::thread would call std::terminate: join what started first
        const int started = size();
        stop();
        throw std::system_error(e.code(), icl::detail::concat(owner_, ": starting worker thread ", w - before,
                                                              " of ", count - before, " failed (the ",
                                                              started, " started were joined): ", e.what()));
      } catch (...) {
        stop();
        throw;
      }
    }
  }

  /// Runs job(0) on the calling thread and job(w) on worker w for w in [1, tasks), and returns when all
  /// have finished. An exception thrown by a job is caught where it is thrown and rethrown here after
  /// every job of the round has finished (the lowest task's first); the pool stays usable.
  /// @throws icl::InvalidArgument unless 1 <= tasks <= size() + 1 (before any job runs).
  void run(int tasks, const std::function<void(int)>& job) {
    ICL_CHECK_ARG(tasks >= 1 && tasks <= size() + 1, "WorkerPool::run: tasks: expected 1 to ", size() + 1,
                  " (the calling thread and ", size(), " workers), got ", tasks);
    errors_.assign(static_cast<std::size_t>(tasks), nullptr);
    if (tasks > 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      tasks_ = tasks;
      pending_ = tasks - 1;
      ++round_;
    }
    if (tasks > 1) wake_.notify_all();
    try {
      job(0);
    } catch (...) {
      errors_[0] = std::current_exception();
    }
    if (tasks > 1) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return pending_ == 0; });
      job_ = nullptr;
      tasks_ = 0;  // a worker that wakes up late for this round, or starts later, skips it
    }
    for (const auto& e : errors_)
      if (e) std::rethrow_exception(e);
  }

  /// Stops and joins every worker (the pool is then empty; grow() starts new ones).
  void stop() noexcept {
    if (threads_.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = false;
  }

 private:
  void loop(int w) {
    std::uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || round_ != seen; });
        if (stop_) return;
        seen = round_;
        if (w >= tasks_) continue;  // this round does not need worker w
        job = job_;
      }
      try {
        (*job)(w);
      } catch (...) {
        errors_[static_cast<std::size_t>(w)] = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::string owner_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::uint64_t round_ = 0;      // bumped for every round with workers; guarded by mutex_
  int tasks_ = 0, pending_ = 0;  // tasks of the round in flight (0: none); workers still busy
  bool stop_ = false;
  const std::function<void(int)>* job_ = nullptr;
  std::vector<std::exception_ptr> errors_;  // one per task; worker w writes only entry w
};

}  // namespace icl
