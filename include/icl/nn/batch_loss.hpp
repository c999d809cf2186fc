/// @file
/// Loss (Eq. 8) and gradient of a model over a batch, optionally on several threads with a
/// deterministic reduction: the batch is cut into chunks of a fixed number of sequences, each
/// chunk's gradient is computed from zero, and chunk gradients are added in chunk order, so the
/// result depends on the chunk size but not on the thread count.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <exception>
#include <functional>
#include <system_error>
#include <thread>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/loss.hpp"
#include "icl/nn/param.hpp"

namespace icl::nn {

/// How loss_and_grad splits the batch.
struct BatchOptions {
  int threads = 1;          ///< worker threads (>= 1); never changes the result
  int chunk_sequences = 0;  ///< sequences per chunk; 0 = the whole batch is one chunk
};

/// Reusable workspace for Eq. 8 loss and gradient of a `Model` (Transformer\<…\>) over batches.
/// Holds one cache per worker and, with several chunks, one model replica per worker. Every call
/// copies the model into the replicas it uses (weights and every setting: score type and scale,
/// activation, LayerNorm eps, layers), so a setting changed between calls always reaches them;
/// for a model of unchanged shape that copy reuses the replicas' buffers, and after the first call
/// of a given shape nothing is allocated except thread start-up.
template <class Model>
class BatchLoss {
 public:
  /// The model's scalar type.
  using S = typename Model::Scalar;
  /// A row of per-token values, 1 x N (the workspace's dL/d(output) rows).
  using RowVec = Eigen::Matrix<S, 1, Eigen::Dynamic>;
  /// Starts a worker thread running its argument. Replaceable (set_thread_starter) so that a
  /// failing start can be tested; the default is `std::thread(std::move(f))`.
  using ThreadStarter = std::function<std::thread(std::function<void()>)>;

  /// A workspace that splits batches as `opt` says; allocates nothing until the first call.
  /// @throws icl::InvalidArgument if opt.threads < 1 or opt.chunk_sequences < 0.
  explicit BatchLoss(BatchOptions opt = {}) : opt_(opt) {
    ICL_CHECK_ARG(opt.threads >= 1, "BatchLoss: threads: expected >= 1, got ", opt.threads);
    ICL_CHECK_ARG(opt.chunk_sequences >= 0, "BatchLoss: chunk_sequences: expected >= 0, got ",
                  opt.chunk_sequences);
  }

  /// The options given at construction.
  const BatchOptions& options() const { return opt_; }

  /// Replaces how worker threads are started (an empty function restores the default); it must
  /// return a running (joinable) thread. If a start throws or returns a thread that is not
  /// running, the threads already started are joined and the call throws (see operator()).
  void set_thread_starter(ThreadStarter start) { start_ = std::move(start); }

  /// Sets model's gradients to d(Eq. 8 loss)/dθ over the batch and returns the loss. `inputs`
  /// holds B sequences of T = 2n-1 tokens ((D+1) x B·T), `targets` is n x B (split_prompts).
  /// @throws icl::InvalidArgument for bad inputs (before any work); std::system_error when a
  ///         worker thread cannot be started (after joining the workers that did start; the
  ///         model's gradients are then unspecified), with the original error code.
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
    S total = 0;
    for (Eigen::Index first = 0; first < K; first += P) {  // waves of P chunks
      const int in_wave = static_cast<int>(std::min<Eigen::Index>(P, K - first));
      auto work = [&](int p) {
        const Eigen::Index k = first + p, b0 = k * chunk, nb = std::min(chunk, B - b0);
        Model& r = replicas_[static_cast<std::size_t>(p)];
        r.zero_grad();
        losses_[static_cast<std::size_t>(p)] =
            run(r, caches_[static_cast<std::size_t>(p)], douts_[static_cast<std::size_t>(p)], inputs, targets,
                T, b0, nb, count);
      };
      std::vector<std::exception_ptr> errors(static_cast<std::size_t>(in_wave));
      auto guarded = [&](int p) {
        try {
          work(p);
        } catch (...) {
          errors[static_cast<std::size_t>(p)] = std::current_exception();
        }
      };
      std::vector<std::thread> pool;
      pool.reserve(static_cast<std::size_t>(in_wave));
      for (int p = 1; p < in_wave; ++p) {
        try {
          pool.push_back(start_ ? start_([&guarded, p] { guarded(p); })
                                : std::thread([&guarded, p] { guarded(p); }));
          if (!pool.back().joinable()) {  // a custom starter that started nothing
            pool.pop_back();
            throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                    "the thread starter returned a thread that is not running");
          }
        } catch (const std::system_error& e) {
          // destroying a joinable std::thread would call std::terminate: join what started first
          for (auto& t : pool) t.join();
          throw std::system_error(
              e.code(), icl::detail::concat("BatchLoss: starting worker thread ", p, " of ", in_wave - 1,
                                            " failed (the ", p - 1, " started were joined): ", e.what()));
        } catch (...) {
          for (auto& t : pool) t.join();
          throw;
        }
      }
      guarded(0);
      for (auto& t : pool) t.join();
      for (const auto& e : errors)
        if (e) std::rethrow_exception(e);
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
};

}  // namespace icl::nn
