// probe.cu - meson's configure check: nvcc builds and links the CUDA runtime statically.
#include <cuda_runtime.h>
int main() { int n = 0; return cudaGetDeviceCount(&n) == cudaSuccess ? 0 : 0; }
