#include <icl/icl.hpp>
int main() { return icl::Rng(1).next_u64() == icl::Rng(1).next_u64() ? 0 : 1; }
