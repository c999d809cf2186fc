/// @file
/// Loss (Eq. 8) and gradient of a model over a batch, optionally on several threads with a
/// deterministic reduction: the batch is cut into chunks of a fixed number of sequences, each
/// chunk's gradient is computed from zero, and chunk gradients are added in chunk order, so the
/// result depends on the chunk size but not on the thread count. The worker threads are started
/// once, on the first call that needs them, and reused by every later call (icl::WorkerPool,
/// core/worker_pool.hpp).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/core/worker_pool.hpp"
#include "icl/nn/loss.hpp"
#include "icl/nn/param.hpp"

namespace icl::nn {

namespace detail {
/// The pool behind BatchLoss (it lives in core/worker_pool.hpp; this name is kept for existing code).
using WorkerPool = icl::WorkerPool;
}  // namespace detail

/// How loss_and_grad splits the batch.
struct BatchOptions {
  int threads = 1;          ///< worker threads (>= 1); never changes the result
  int chunk_sequences = 0;  ///< sequences per chunk; 0 = the whole batch is one chunk
};

/// Reusable workspace for Eq. 8 loss and gradient of a `Model` (Transformer\<…\>) over batches.
/// Holds one cache per worker and, with several chunks, one model replica per worker and a pool of
/// threads - 1 worker threads, started on the first call that needs them and reused by every later
/// call (joined by the destructor and by set_thread_starter). Every call copies the model into the
/// replicas it uses (weights and every setting: score type and scale, activation, LayerNorm eps,
/// layers), so a setting changed between calls always reaches them; for a model of unchanged shape
/// that copy reuses the replicas' buffers, and after the first call of a given shape nothing is
/// allocated and no thread is started.
///
/// Movable, not copyable (it owns threads). Not thread-safe: one call at a time per BatchLoss.
template <class Model>
class BatchLoss {
 public:
  /// The model's scalar type.
  using S = typename Model::Scalar;
  /// A row of per-token values, 1 x N (the workspace's dL/d(output) rows).
  using RowVec = Eigen::Matrix<S, 1, Eigen::Dynamic>;
  /// Starts a worker thread running its argument. Replaceable (set_thread_starter) so that a
  /// failing start can be tested; the default is `std::thread(std::move(f))`. The returned thread
  /// must run the argument (a worker's loop, which returns when the pool is stopped).
  using ThreadStarter = std::function<std::thread(std::function<void()>)>;

  /// A workspace that splits batches as `opt` says; allocates nothing and starts no thread until
  /// the first call.
  /// @throws icl::InvalidArgument if opt.threads < 1 or opt.chunk_sequences < 0.
  explicit BatchLoss(BatchOptions opt = {}) : opt_(opt) {
    ICL_CHECK_ARG(opt.threads >= 1, "BatchLoss: threads: expected >= 1, got ", opt.threads);
    ICL_CHECK_ARG(opt.chunk_sequences >= 0, "BatchLoss: chunk_sequences: expected >= 0, got ",
                  opt.chunk_sequences);
  }
  /// Not copyable: a copy would have to share or duplicate the worker threads.
  BatchLoss(const BatchLoss&) = delete;
  /// Not copyable (see the copy constructor).
  BatchLoss& operator=(const BatchLoss&) = delete;
  /// Takes over the other's workspace and running workers (they live on the heap, so they do not
  /// refer to the moved-from object, which is left without workers and starts new ones if used).
  BatchLoss(BatchLoss&&) = default;
  /// Joins this workspace's workers, then takes over the other's (see the move constructor).
  BatchLoss& operator=(BatchLoss&&) = default;
  /// Stops and joins the worker threads, if any were started.
  ~BatchLoss() = default;

  /// The options given at construction.
  const BatchOptions& options() const { return opt_; }

  /// Worker threads running now (0 until a call needs them; at most threads - 1).
  int workers() const { return pool_ ? pool_->size() : 0; }

  /// Replaces how worker threads are started (an empty function restores the default). Stops and
  /// joins the running workers, so that the next call that needs workers starts them with `start`.
  /// `start` must return a running (joinable) thread that runs its argument. If a start throws or
  /// returns a thread that is not running, every worker is joined and the call throws (see
  /// operator()).
  void set_thread_starter(ThreadStarter start) {
    if (pool_) pool_->stop();
    start_ = std::move(start);
  }

  /// Sets model's gradients to d(Eq. 8 loss)/dθ over the batch and returns the loss. `inputs`
  /// holds B sequences of T = 2n-1 tokens ((D+1) x B·T), `targets` is n x B (split_prompts).
  /// @throws icl::InvalidArgument for bad inputs (before any work); std::system_error when a
  ///         worker thread cannot be started (before any chunk is computed, after joining every
  ///         worker; the model's gradients are then unspecified), with the original error code.
  ///         An exception thrown by the model on a worker thread is rethrown here once every chunk
  ///         of its wave has finished (the gradients are then unspecified); the workers keep
  ///         running and the next call works normally.
  template <class DerivedY>
  S operator()(Model& model, const Eigen::Ref<const Mat<S>>& inputs,
               const Eigen::MatrixBase<DerivedY>& targets, int T) {
    ICL_CHECK_ARG(T >= 1 && inputs.cols() % T == 0, "BatchLoss: inputs: expected a multiple of T = ", T,
                  " columns, got ", inputs.cols());
    const Eigen::Index B = inputs.cols() / T;
    const int n = (T + 1) / 2;
    ICL_CHECK_ARG(targets.rows() == n && targets.cols() == B, "BatchLoss: targets: expected ", n, "x", B,
                  ", got ", targets.rows(), "x", targets.cols());
    // validated here, before any worker starts, so that workers do not throw
    ICL_CHECK_ARG(inputs.rows() == Model::TokenRows, "BatchLoss: inputs: expected D+1 = ", Model::TokenRows,
                  " rows, got ", inputs.rows());
    ICL_CHECK_ARG(T <= Model::MaxLen, "BatchLoss: T: expected at most TMax = ", Model::MaxLen, ", got ", T);
    check_finite(inputs, "BatchLoss: inputs");
    check_finite(targets, "BatchLoss: targets");
    const double count = static_cast<double>(B * n);
    const Eigen::Index chunk =
        opt_.chunk_sequences == 0 ? B : std::min<Eigen::Index>(opt_.chunk_sequences, B);
    const Eigen::Index K = (B + chunk - 1) / chunk;  // chunks
    model.zero_grad();
    if (K == 1) {  // the whole batch in one piece, directly on the model
      if (caches_.empty()) caches_.resize(1);
      return run(model, caches_[0], dout_, inputs, targets, T, 0, B, count);
    }
    const int P = static_cast<int>(std::min<Eigen::Index>(opt_.threads, K));
    while (static_cast<int>(replicas_.size()) < P) replicas_.push_back(model);
    if (static_cast<int>(caches_.size()) < P) caches_.resize(static_cast<std::size_t>(P));
    douts_.resize(static_cast<std::size_t>(P));
    losses_.assign(static_cast<std::size_t>(P), S(0));
    // Every replica becomes a full copy of the model: weights and all non-parameter settings
    // (copying only the weights let settings changed after the first call go stale). For an
    // unchanged shape this copy assignment reuses the replicas' buffers.
    for (int p = 0; p < P; ++p) replicas_[static_cast<std::size_t>(p)] = model;
    const std::vector<ParamView<S>> main = model.parameters();
    if (P > 1) {  // the workers: started once, then reused
      if (!pool_) pool_ = std::make_unique<WorkerPool>("BatchLoss");
      pool_->grow(P - 1, start_);
    }
    S total = 0;
    for (Eigen::Index first = 0; first < K; first += P) {  // waves of P chunks
      const int in_wave = static_cast<int>(std::min<Eigen::Index>(P, K - first));
      const std::function<void(int)> work = [&](int p) {  // chunk first + p on replica p
        const Eigen::Index k = first + p, b0 = k * chunk, nb = std::min(chunk, B - b0);
        Model& r = replicas_[static_cast<std::size_t>(p)];
        r.zero_grad();
        losses_[static_cast<std::size_t>(p)] =
            run(r, caches_[static_cast<std::size_t>(p)], douts_[static_cast<std::size_t>(p)], inputs, targets,
                T, b0, nb, count);
      };
      if (in_wave == 1)
        work(0);
      else
        pool_->run(in_wave, work);
      for (int p = 0; p < in_wave; ++p) {  // reduce in chunk order
        total += losses_[static_cast<std::size_t>(p)];
        const std::vector<ParamView<S>> rp = replicas_[static_cast<std::size_t>(p)].parameters();
        for (std::size_t i = 0; i < main.size(); ++i) main[i].grad_map() += rp[i].grad_map();
      }
    }
    return total;
  }

 private:
  template <class DerivedY>
  static S run(Model& m, typename Model::Cache& c, RowVec& dout, const Eigen::Ref<const Mat<S>>& inputs,
               const Eigen::MatrixBase<DerivedY>& targets, int T, Eigen::Index b0, Eigen::Index nb,
               double count) {
    m.forward(inputs.middleCols(b0 * T, nb * T), T, c);
    const S loss = icl_loss<S>(c.out, targets.middleCols(b0, nb), T, &dout, count);
    m.backward(c, dout);
    return loss;
  }

  BatchOptions opt_;
  ThreadStarter start_;  // empty: std::thread
  std::vector<Model> replicas_;
  std::vector<typename Model::Cache> caches_;
  std::vector<RowVec> douts_;
  RowVec dout_;
  std::vector<S> losses_;
  // last: destroyed (workers joined) first, before the replicas and caches a worker uses; null
  // until a call needs workers, and after a move
  std::unique_ptr<WorkerPool> pool_;
};

}  // namespace icl::nn
