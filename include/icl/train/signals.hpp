/// @file
/// Stopping a training run cleanly on a signal (docs/train.md "Stopping and resuming",
/// docs/sweeps.md): while a StopSignals object lives, the first SIGTERM, SIGINT or SIGUSR1 sets a
/// flag that Trainer::run() reads at every step boundary; the run then writes its checkpoint and
/// returns with Trainer::interrupted() true, and a program exits with kExitInterrupted (75). A
/// second signal ends the process at once with status 128 + the signal's number (the shell's
/// convention), without a checkpoint; the same signal repeated within kDuplicateWindowMs (1 s) of the
/// first counts as the first (a batch system's duplicate delivery). SLURM sends SIGUSR1 (`--signal`) or
/// SIGTERM (preemption, the time limit) before it kills a job.
#pragma once

#include <atomic>
#include <csignal>
#include <ctime>

#include <unistd.h>

namespace icl::train {

/// Exit status of a program that stopped on a signal after writing its checkpoint: run it again to
/// resume (EX_TEMPFAIL of sysexits.h: "try again later").
inline constexpr int kExitInterrupted = 75;

/// Internals of StopSignals (the flag and the handler).
namespace stop_detail {
/// The signal that asked to stop (0: none), set by the handler.
inline std::atomic<int>& stop_signal_number() {
  static std::atomic<int> n{0};
  static_assert(std::atomic<int>::is_always_lock_free, "the stop flag must be lock-free in a signal handler");
  return n;
}
/// Monotonic milliseconds of the first stop signal (clock_gettime is async-signal-safe).
inline std::atomic<long long>& first_signal_ms() {
  static std::atomic<long long> t{0};
  return t;
}
/// CLOCK_MONOTONIC in milliseconds (async-signal-safe).
inline long long monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
/// A repeat of the first signal within this many milliseconds is taken as the same request, not as
/// a second one: SLURM's scancel and time limit signal the batch script's processes and the script
/// forwards the signal too, so the runner receives one TERM twice within milliseconds
/// (docs/sweeps.md §4, measured: 3-8 ms apart).
inline constexpr long long kDuplicateWindowMs = 1000;
/// The handler of SIGTERM, SIGINT and SIGUSR1: records the first signal; exits at once on a second.
extern "C" inline void icl_stop_signal_handler(int sig) {
  auto& n = stop_signal_number();
  int expected = 0;
  if (n.compare_exchange_strong(expected, sig)) {
    first_signal_ms().store(monotonic_ms());
    return;
  }
  if (expected == sig && monotonic_ms() - first_signal_ms().load() < kDuplicateWindowMs)
    return;            // a duplicate
  ::_exit(128 + sig);  // a second signal: stop at once
}
}  // namespace stop_detail

/// The signal that asked the run to stop (SIGTERM, SIGINT or SIGUSR1), or 0 if none arrived.
inline int stop_requested() { return stop_detail::stop_signal_number().load(std::memory_order_relaxed); }

/// Installs the handlers for SIGTERM, SIGINT and SIGUSR1 and clears the flag; the destructor
/// restores the previous handlers and clears the flag again (read stop_requested() while the
/// object lives). One at a time per process (not nested).
class StopSignals {
 public:
  StopSignals() {
    stop_detail::stop_signal_number().store(0);
    struct sigaction sa {};
    sa.sa_handler = stop_detail::icl_stop_signal_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking call returns EINTR; the loop checks at step boundaries
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &old_[i]);
  }
  /// Restores the previous handlers and clears the flag, so that a later run() without a
  /// StopSignals is not stopped by a signal that this one handled.
  ~StopSignals() {
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &old_[i], nullptr);
    stop_detail::stop_signal_number().store(0);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// The signal that arrived (0: none yet).
  int signal() const { return stop_requested(); }

 private:
  static constexpr int kSignals[3] = {SIGTERM, SIGINT, SIGUSR1};
  struct sigaction old_[3]{};
};

}  // namespace icl::train
