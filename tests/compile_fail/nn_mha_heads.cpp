// Must not compile: the standard attention needs H divisible by the number of heads.
#include "icl/nn/attention.hpp"

int main() {
  icl::nn::MultiHeadAttention<float, 10, 4> attn;
  (void)attn;
  return 0;
}
