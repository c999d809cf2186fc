// icl::WorkerPool (core/worker_pool.hpp): every task of every round runs exactly once, on the thread
// it names; threads start once and are reused; errors come back from run() and grow() and leave the
// pool usable; stop() and the destructor join every worker (docs/core.md "Worker pool").
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "icl/core/rng.hpp"
#include "icl/core/worker_pool.hpp"
#include "support/throws.hpp"

namespace {

// Counts the threads a pool starts and those whose loop has returned.
struct StartCounter {
  std::atomic<int> started{0}, finished{0};
  icl::WorkerPool::Starter starter() {
    return [this](std::function<void()> f) {
      ++started;
      return std::thread([this, f = std::move(f)] {
        f();
        ++finished;
      });
    };
  }
};

}  // namespace

TEST_CASE("worker pool: many rounds of varying task counts run every task once", "[core][threads]") {
  static_assert(!std::is_copy_constructible_v<icl::WorkerPool>);
  static_assert(!std::is_move_constructible_v<icl::WorkerPool>);
  StartCounter c;
  icl::WorkerPool pool;
  CHECK(pool.size() == 0);
  pool.grow(5, c.starter());
  CHECK(pool.size() == 5);
  CHECK(c.started == 5);
  pool.grow(3, c.starter());  // never shrinks, starts nothing
  CHECK(pool.size() == 5);
  CHECK(c.started == 5);

  icl::Rng rng(19);
  std::vector<std::atomic<int>> runs(6);
  std::vector<std::thread::id> ids(6);
  std::set<std::thread::id> worker_ids;
  long long expected_sum = 0;
  std::atomic<long long> sum{0};
  const std::thread::id caller = std::this_thread::get_id();
  for (int round = 0; round < 2000; ++round) {
    // 1..6 tasks, with long runs of one size and abrupt changes (a worker that slept through several
    // rounds must not run a stale one, and every worker the round names must run it)
    const int tasks = round % 97 < 5 ? 6 : 1 + static_cast<int>(rng.below(6));
    for (auto& r : runs) r = 0;
    pool.run(tasks, [&](int t) {
      ++runs[static_cast<std::size_t>(t)];
      ids[static_cast<std::size_t>(t)] = std::this_thread::get_id();
      sum += 1000LL * round + t;
    });
    for (int t = 0; t < tasks; ++t) expected_sum += 1000LL * round + t;
    for (int t = 0; t < 6; ++t) {
      INFO("round " << round << ", " << tasks << " tasks, task " << t);
      REQUIRE(runs[static_cast<std::size_t>(t)] == (t < tasks ? 1 : 0));
    }
    REQUIRE(ids[0] == caller);  // task 0 runs on the calling thread
    for (int t = 1; t < tasks; ++t) {
      REQUIRE(ids[static_cast<std::size_t>(t)] != caller);
      worker_ids.insert(ids[static_cast<std::size_t>(t)]);
    }
  }
  CHECK(sum == expected_sum);
  CHECK(worker_ids.size() == 5);  // five distinct worker threads, reused by every round
  CHECK(c.started == 5);          // and none started after grow()
  CHECK(c.finished == 0);
  pool.stop();
  CHECK(c.finished == 5);
  CHECK(pool.size() == 0);
  pool.run(1, [](int) {});  // a round of one task needs no worker
}

TEST_CASE("worker pool: a job's exception comes back from run() and the pool stays usable",
          "[core][threads]") {
  icl::WorkerPool pool;
  pool.grow(3);
  std::atomic<int> ran{0};
  // tasks 1 and 3 throw: every task still runs, then the lowest task's exception is rethrown
  CHECK_THROWS_WITH(pool.run(4,
                             [&](int t) {
                               ++ran;
                               if (t == 1 || t == 3) throw std::runtime_error("task " + std::to_string(t));
                             }),
                    "task 1");
  CHECK(ran == 4);
  // task 0 (the calling thread) throwing waits for the workers too
  ran = 0;
  CHECK_THROWS_WITH(pool.run(4,
                             [&](int t) {
                               if (t == 0) throw std::logic_error("caller");
                               std::this_thread::sleep_for(std::chrono::milliseconds(2));
                               ++ran;
                             }),
                    "caller");
  CHECK(ran == 3);
  // the next rounds work normally, with every task count
  for (int tasks = 1; tasks <= 4; ++tasks) {
    std::atomic<int> count{0};
    pool.run(tasks, [&](int) { ++count; });
    CHECK(count == tasks);
  }
}

TEST_CASE("worker pool: run() refuses a task count the pool cannot serve", "[core][threads]") {
  icl::WorkerPool pool;
  bool ran = false;
  CHECK_INVALID(pool.run(2, [&](int) { ran = true; }), "WorkerPool::run: tasks: expected 1 to 1");
  CHECK_INVALID(pool.run(0, [&](int) { ran = true; }), "got 0");
  pool.grow(2);
  CHECK_INVALID(pool.run(4, [&](int) { ran = true; }), "expected 1 to 3 (the calling thread and 2 workers)");
  CHECK_FALSE(ran);  // refused before any job ran
}

TEST_CASE("worker pool: a failed start joins the started workers and names the start", "[core][threads]") {
  icl::WorkerPool pool("Owner");
  std::atomic<int> finished{0};
  int starts = 0;
  const icl::WorkerPool::Starter failing_third = [&](std::function<void()> f) {
    if (++starts == 3)
      throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again), "injected");
    return std::thread([f = std::move(f), &finished] {
      f();
      ++finished;
    });
  };
  pool.grow(1, failing_third);  // one started
  try {
    pool.grow(4, failing_third);  // two more tried, the second of them fails
    FAIL("grow() did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::make_error_code(std::errc::resource_unavailable_try_again));
    CHECK_THAT(std::string(e.what()),
               Catch::Contains("Owner: starting worker thread 2 of 3 failed (the 2 started were joined)"));
    CHECK_THAT(std::string(e.what()), Catch::Contains("injected"));
  }
  CHECK(pool.size() == 0);
  CHECK(finished == 2);  // the two that had started were stopped and joined
  // a starter that starts nothing is refused with std::errc::invalid_argument
  try {
    pool.grow(2, [](std::function<void()>) { return std::thread(); });
    FAIL("grow() did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::make_error_code(std::errc::invalid_argument));
    CHECK_THAT(std::string(e.what()), Catch::Contains("starting worker thread 1 of 2 failed"));
  }
  CHECK(pool.size() == 0);
  // an exception other than std::system_error stops the pool and passes through unchanged
  pool.grow(1);
  CHECK_THROWS_WITH(pool.grow(3,
                              [&, calls = 0](std::function<void()> f) mutable {
                                if (++calls == 2) throw std::runtime_error("other");
                                return std::thread(std::move(f));
                              }),
                    "other");
  CHECK(pool.size() == 0);
  // the pool is usable afterwards with the default starter
  pool.grow(2);
  std::atomic<int> count{0};
  pool.run(3, [&](int) { ++count; });
  CHECK(count == 3);
}

TEST_CASE("worker pool: stop() and the destructor join every worker; grow() after stop() starts anew",
          "[core][threads]") {
  StartCounter c;
  {
    icl::WorkerPool pool;
    pool.grow(3, c.starter());
    pool.run(4, [](int) {});
    pool.stop();
    CHECK(c.finished == 3);
    pool.stop();  // a second stop is a no-op
    pool.grow(2, c.starter());
    CHECK(c.started == 5);
    std::atomic<int> count{0};
    pool.run(3, [&](int) { ++count; });
    CHECK(count == 3);
    CHECK(c.finished == 3);
  }
  CHECK(c.finished == 5);  // the destructor joined the last two
  {
    icl::WorkerPool idle;  // workers that never ran a round are joined as well
    idle.grow(2, c.starter());
  }
  CHECK(c.started == 7);
  CHECK(c.finished == 7);
}
