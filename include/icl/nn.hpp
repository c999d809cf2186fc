/// @file
/// Layers with hand-written backward passes, blocks, models, loss.
#pragma once
#include "icl/core.hpp"
#include "icl/nn/activation.hpp"
#include "icl/nn/attention.hpp"
#include "icl/nn/batch_loss.hpp"
#include "icl/nn/block_stack.hpp"
#include "icl/nn/feed_forward.hpp"
#include "icl/nn/init.hpp"
#include "icl/nn/layer_norm.hpp"
#include "icl/nn/linear.hpp"
#include "icl/nn/loss.hpp"
#include "icl/nn/paper_block.hpp"
#include "icl/nn/param.hpp"
#include "icl/nn/pre_ln_block.hpp"
#include "icl/nn/softmax.hpp"
#include "icl/nn/transformer.hpp"
