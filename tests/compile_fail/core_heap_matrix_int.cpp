// Must not compile: HeapMatrix of an integer scalar.
#include "icl/core/storage.hpp"
int main() {
  icl::HeapMatrix<int, 4, 4> m;
  return m.rows();
}
