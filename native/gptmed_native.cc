// gptmed's optional native kernels for training on the CPU without tfjs-node.
//
// Matrix products go to the system's BLAS (OpenBLAS on Debian: libopenblas0-pthread), found with
// dlopen at run time so the addon builds without BLAS headers and loads without BLAS installed
// (openBlas() then reports why). OpenBLAS runs single-threaded here and this file's own pool splits
// the work: one pool for products and element-wise kernels keeps two busy-waiting thread pools from
// fighting over two cores. Exports: openBlas, gemm (the products); softmax, softmaxGrad; crossEntropy,
// crossEntropyGrad (the output layer's loss, fused per row); unary (exp, log, neg, sqrt, rsqrt, square,
// erf, tanh), binary (add, sub, mul, div, broadcast), reduceInner and reduceOuter (sum, max, mean);
// permute and copyColumns (transposes, splits, concatenations): the kernels that dominate a GPT step once
// the products are fast.
// All arrays are Float32Array/Int32Array views, usually of the tfjs wasm heap, read and written in place.
#include <node_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// ---- BLAS, resolved at run time -------------------------------------------------------------
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                         float*, int);
using SetThreadsFn = void (*)(int);
SgemmFn sgemm = nullptr;

// ---- a small pool: the calling thread plus (cores - 1) sleeping workers --------------------
class Pool {
 public:
  explicit Pool(int threads) : threads_(std::max(1, threads)) {
    for (int id = 1; id < threads_; id++) workers_.emplace_back([this, id] { Loop(id); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int threads() const { return threads_; }
  // Runs task(id) on every thread (id 0 is the caller) and returns when all are done.
  void Run(const std::function<void(int)>& task) {
    if (threads_ == 1) return task(0);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      pending_ = threads_ - 1;
      generation_++;
    }
    wake_.notify_all();
    task(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  void Loop(int id) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      const std::function<void(int)>* task = task_;
      lock.unlock();
      (*task)(id);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }
  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* task_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

Pool* pool = nullptr;

// Splits [0, n) into contiguous parts, one per thread, each at least `grain` long.
void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t parts = std::min<int64_t>(pool->threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  if (parts <= 1) return body(0, n);
  pool->Run([&](int id) {
    if (id >= parts) return;
    body(n * id / parts, n * (id + 1) / parts);
  });
}

// ---- N-API argument helpers -----------------------------------------------------------------
struct ArgError {
  std::string message;
};

template <typename T, napi_typedarray_type kType>
T* TypedData(napi_env env, napi_value value, size_t min_length, const char* what, bool nullable = false) {
  napi_valuetype vt;
  napi_typeof(env, value, &vt);
  if (nullable && (vt == napi_null || vt == napi_undefined)) return nullptr;
  bool is_typed = false;
  napi_is_typedarray(env, value, &is_typed);
  if (!is_typed) throw ArgError{std::string(what) + ": expected a typed array"};
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr);
  if (type != kType) throw ArgError{std::string(what) + ": wrong typed array type"};
  if (length < min_length) throw ArgError{std::string(what) + ": typed array too short"};
  return static_cast<T*>(data);
}
float* F32(napi_env env, napi_value v, size_t n, const char* what) {
  return TypedData<float, napi_float32_array>(env, v, n, what);
}
float* F32OrNull(napi_env env, napi_value v, size_t n, const char* what) {
  return TypedData<float, napi_float32_array>(env, v, n, what, true);
}
int32_t* I32(napi_env env, napi_value v, size_t n, const char* what) {
  return TypedData<int32_t, napi_int32_array>(env, v, n, what);
}
double Num(napi_env env, napi_value v, const char* what) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) throw ArgError{std::string(what) + ": expected a number"};
  return d;
}
int64_t Int(napi_env env, napi_value v, const char* what) {
  double d = Num(env, v, what);
  if (d < 0 || d != std::floor(d)) throw ArgError{std::string(what) + ": expected a non-negative integer"};
  return static_cast<int64_t>(d);
}
bool Bool(napi_env env, napi_value v) {
  bool b = false;
  napi_get_value_bool(env, v, &b);
  return b;
}

template <size_t N>
struct Args {
  napi_value v[N];
  Args(napi_env env, napi_callback_info info) {
    size_t argc = N;
    napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
    if (argc < N) throw ArgError{"expected " + std::to_string(N) + " arguments"};
  }
  napi_value operator[](size_t i) const { return v[i]; }
};

// Wraps a kernel so that argument errors become JS exceptions.
template <napi_value (*Kernel)(napi_env, napi_callback_info)>
napi_value Guarded(napi_env env, napi_callback_info info) {
  try {
    return Kernel(env, info);
  } catch (const ArgError& e) {
    napi_throw_type_error(env, nullptr, e.message.c_str());
    return nullptr;
  }
}

napi_value Undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// ---- openBlas(candidates: string[]): string — loads the first library that has cblas_sgemm ---
napi_value OpenBlas(napi_env env, napi_callback_info info) {
  Args<1> a(env, info);
  uint32_t count = 0;
  napi_get_array_length(env, a[0], &count);
  std::string tried;
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    napi_get_element(env, a[0], i, &item);
    char name[1024];
    size_t len = 0;
    napi_get_value_string_utf8(env, item, name, sizeof name, &len);
    void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      tried += std::string(tried.empty() ? "" : ", ") + name;
      continue;
    }
    auto fn = reinterpret_cast<SgemmFn>(dlsym(lib, "cblas_sgemm"));
    if (fn == nullptr) {
      tried += std::string(tried.empty() ? "" : ", ") + name + " (no cblas_sgemm)";
      continue;
    }
    // One BLAS thread per call: the pool below supplies the parallelism.
    if (auto set_threads = reinterpret_cast<SetThreadsFn>(dlsym(lib, "openblas_set_num_threads"))) set_threads(1);
    sgemm = fn;
    napi_value result;
    napi_create_string_utf8(env, name, len, &result);
    return result;
  }
  throw ArgError{"no BLAS library with cblas_sgemm could be loaded (tried " + tried + ")"};
}

// ---- gemm: C[b] = op(A[b]) · op(B[b]) (+ bias), b < batch --------------------------------
// gemm(a, b, c, bias|null, batch, m, n, k, transA, transB, strideA, strideB) with c contiguous
// [batch, m, n]; a stride of 0 broadcasts that operand over the batch.
napi_value Gemm(napi_env env, napi_callback_info info) {
  if (sgemm == nullptr) throw ArgError{"gemm: openBlas() has not succeeded"};
  Args<12> a(env, info);
  const int64_t batch = Int(env, a[4], "batch"), m = Int(env, a[5], "m"), n = Int(env, a[6], "n"),
                k = Int(env, a[7], "k");
  const bool ta = Bool(env, a[8]), tb = Bool(env, a[9]);
  const int64_t sa = Int(env, a[10], "strideA"), sb = Int(env, a[11], "strideB");
  const float* A = F32(env, a[0], sa * (batch - 1) + m * k, "a");
  const float* B = F32(env, a[1], sb * (batch - 1) + k * n, "b");
  float* C = F32(env, a[2], batch * m * n, "c");
  const float* bias = F32OrNull(env, a[3], n, "bias");
  const int lda = ta ? m : k, ldb = tb ? k : n;
  // Parallel over (batch, row block) pieces; a row block of C needs rows of op(A) only.
  const int64_t threads = pool->threads();
  const int64_t row_parts = batch >= threads ? 1 : std::min<int64_t>(threads, std::max<int64_t>(1, m / 16));
  const int64_t pieces = batch * row_parts;
  const double flops_per_piece = 2.0 * m * n * k / row_parts;
  const int64_t grain = flops_per_piece > 2e5 ? 1 : std::max<int64_t>(1, static_cast<int64_t>(2e5 / flops_per_piece));
  ParallelFor(pieces, grain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; p++) {
      const int64_t b = p / row_parts, part = p % row_parts;
      const int64_t r0 = m * part / row_parts, r1 = m * (part + 1) / row_parts;
      if (r1 <= r0) continue;
      const float* Ab = A + sa * b + (ta ? r0 : r0 * k);
      float* Cb = C + b * m * n + r0 * n;
      float beta = 0.f;
      if (bias != nullptr) {
        for (int64_t r = r0; r < r1; r++) std::memcpy(Cb + (r - r0) * n, bias, n * sizeof(float));
        beta = 1.f;
      }
      sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, static_cast<int>(r1 - r0),
            static_cast<int>(n), static_cast<int>(k), 1.f, Ab, lda, B + sb * b, ldb, beta, Cb, static_cast<int>(n));
    }
  });
  return Undefined(env);
}

// ---- element-wise kernels ------------------------------------------------------------------
// Each hot loop is compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time, so the
// addon stays portable. exp is a branch-free polynomial (as XNNPACK's) so that it vectorises.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GPTMED_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GPTMED_CLONES
#endif

inline float ExpApprox(float x) {
  // exp(x) = 2^n · e^r with n = round(x / ln 2), |r| <= ln2/2; degree-6 polynomial for e^r (~1 ulp).
  // Rounding by adding 1.5·2^23 keeps the loop free of calls, so it vectorises.
  float c = x < -87.33654f ? -87.33654f : x;
  c = c > 88.37626f ? 88.37626f : c;
  const float n = (c * 1.44269504f + 12582912.f) - 12582912.f;
  const float r = c - n * 0.693145752f - n * 1.42860677e-6f;
  float p = 1.3888889e-3f;
  p = p * r + 8.3333333e-3f;
  p = p * r + 4.1666667e-2f;
  p = p * r + 1.6666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float result = p * scale;
  return x < -87.33654f ? 0.f : (x != x ? x : result);
}

// ---- softmax over the last axis: softmax(x, y, rows, cols) -------------------------------
// y = softmax(x · scale) over n values; eight running maxima and sums, so the loops vectorise.
GPTMED_CLONES void ScaledSoftmaxRow(const float* x, float* y, int64_t n, float scale) {
  constexpr int kLanes = 8;
  const int64_t whole = n - n % kLanes;
  float lane[kLanes];
  for (int l = 0; l < kLanes; l++) lane[l] = -INFINITY;
  for (int64_t j = 0; j < whole; j += kLanes) {
    for (int l = 0; l < kLanes; l++) lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];
  }
  float max = -INFINITY;
  for (int l = 0; l < kLanes; l++) max = std::max(max, lane[l]);
  for (int64_t j = whole; j < n; j++) max = std::max(max, x[j]);
  max *= scale;  // scale > 0: the maximum of x · scale (a row of −∞ gives NaN, as in the reference)
  for (int64_t j = 0; j < n; j++) y[j] = ExpApprox(x[j] * scale - max);
  for (int l = 0; l < kLanes; l++) lane[l] = 0.f;
  for (int64_t j = 0; j < whole; j += kLanes) {
    for (int l = 0; l < kLanes; l++) lane[l] += y[j + l];
  }
  float sum = 0.f;
  for (int l = 0; l < kLanes; l++) sum += lane[l];
  for (int64_t j = whole; j < n; j++) sum += y[j];
  const float inv = 1.f / sum;
  for (int64_t j = 0; j < n; j++) y[j] *= inv;
}

napi_value Softmax(napi_env env, napi_callback_info info) {
  Args<4> a(env, info);
  const int64_t rows = Int(env, a[2], "rows"), cols = Int(env, a[3], "cols");
  const float* x = F32(env, a[0], rows * cols, "x");
  float* y = F32(env, a[1], rows * cols, "y");
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) ScaledSoftmaxRow(x + r * cols, y + r * cols, cols, 1.f);
  });
  return Undefined(env);
}

// dx = scale · y · (dy − Σ dy·y) over rows of cols: softmax's gradient from its output y. Eight partial dot
// products, so the loop vectorises.
GPTMED_CLONES void SoftmaxGradRow(const float* dy, const float* y, float* dx, int64_t cols, float scale) {
  constexpr int kLanes = 8;
  const int64_t whole = cols - cols % kLanes;
  float lane[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t j = 0; j < whole; j += kLanes) {
    for (int l = 0; l < kLanes; l++) lane[l] += dy[j + l] * y[j + l];
  }
  float dot = 0.f;
  for (int l = 0; l < kLanes; l++) dot += lane[l];
  for (int64_t j = whole; j < cols; j++) dot += dy[j] * y[j];
  for (int64_t j = 0; j < cols; j++) dx[j] = scale * (y[j] * (dy[j] - dot));
}

void SoftmaxGradRows(const float* dy, const float* y, float* dx, int64_t rows, int64_t cols, float scale) {
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) SoftmaxGradRow(dy + r * cols, y + r * cols, dx + r * cols, cols, scale);
  });
}

// softmaxGrad(dy, y, dx, rows, cols): dx = y * (dy - sum(dy * y)) per row.
napi_value SoftmaxGrad(napi_env env, napi_callback_info info) {
  Args<5> a(env, info);
  const int64_t rows = Int(env, a[3], "rows"), cols = Int(env, a[4], "cols");
  SoftmaxGradRows(F32(env, a[0], rows * cols, "dy"), F32(env, a[1], rows * cols, "y"), F32(env, a[2], rows * cols, "dx"), rows, cols, 1.f);
  return Undefined(env);
}


// ---- cross-entropy fused with softmax, over rows of logits -----------------------------------
// crossEntropy(logits, targets, weights, loss, logZ, rows, cols): logZ[r] = log Σ_j exp(x[r, j]) and
// loss[r] = weights[r] · (logZ[r] − x[r, targets[r]]). No [rows, cols] temporary: the output layer's
// softmax over the vocabulary is the largest tensor of a step.
// log Σ exp(x[j]) over one row. Eight running maxima and sums, so the loops vectorise without -ffast-math.
GPTMED_CLONES float RowLogSumExp(const float* x, int64_t n) {
  constexpr int kLanes = 8;
  const int64_t whole = n - n % kLanes;
  float lane_max[kLanes], lane_sum[kLanes];
  for (int l = 0; l < kLanes; l++) lane_max[l] = -INFINITY, lane_sum[l] = 0.f;
  for (int64_t j = 0; j < whole; j += kLanes) {
    for (int l = 0; l < kLanes; l++) lane_max[l] = x[j + l] > lane_max[l] ? x[j + l] : lane_max[l];
  }
  float max = -INFINITY;
  for (int l = 0; l < kLanes; l++) max = std::max(max, lane_max[l]);
  for (int64_t j = whole; j < n; j++) max = std::max(max, x[j]);
  for (int64_t j = 0; j < whole; j += kLanes) {
    for (int l = 0; l < kLanes; l++) lane_sum[l] += ExpApprox(x[j + l] - max);
  }
  float sum = 0.f;
  for (int l = 0; l < kLanes; l++) sum += lane_sum[l];
  for (int64_t j = whole; j < n; j++) sum += ExpApprox(x[j] - max);
  return max + std::log(sum);
}

GPTMED_CLONES void RowCrossEntropyGrad(const float* x, float logZ, float scale, float* dx, int64_t n) {
  for (int64_t j = 0; j < n; j++) dx[j] = ExpApprox(x[j] - logZ) * scale;
}

napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  Args<7> a(env, info);
  const int64_t rows = Int(env, a[5], "rows"), cols = Int(env, a[6], "cols");
  const float* x = F32(env, a[0], rows * cols, "logits");
  const int32_t* targets = I32(env, a[1], rows, "targets");
  const float* w = F32(env, a[2], rows, "weights");
  float* loss = F32(env, a[3], rows, "loss");
  float* logZ = F32(env, a[4], rows, "logZ");
  for (int64_t r = 0; r < rows; r++) {
    if (targets[r] < 0 || targets[r] >= cols) throw ArgError{"crossEntropy: target out of range"};
  }
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      logZ[r] = RowLogSumExp(xr, cols);
      loss[r] = w[r] * (logZ[r] - xr[targets[r]]);
    }
  });
  return Undefined(env);
}

// crossEntropyGrad(logits, logZ, targets, rowScale, dx, rows, cols):
// dx[r, j] = (exp(x[r, j] − logZ[r]) − [j = targets[r]]) · rowScale[r].
napi_value CrossEntropyGrad(napi_env env, napi_callback_info info) {
  Args<7> a(env, info);
  const int64_t rows = Int(env, a[5], "rows"), cols = Int(env, a[6], "cols");
  const float* x = F32(env, a[0], rows * cols, "logits");
  const float* logZ = F32(env, a[1], rows, "logZ");
  const int32_t* targets = I32(env, a[2], rows, "targets");
  const float* scale = F32(env, a[3], rows, "rowScale");
  float* dx = F32(env, a[4], rows * cols, "dx");
  for (int64_t r = 0; r < rows; r++) {
    if (targets[r] < 0 || targets[r] >= cols) throw ArgError{"crossEntropyGrad: target out of range"};
  }
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      RowCrossEntropyGrad(x + r * cols, logZ[r], scale[r], dx + r * cols, cols);
      dx[r * cols + targets[r]] -= scale[r];
    }
  });
  return Undefined(env);
}


enum UnaryOp { kExp = 0, kLog, kNeg, kSqrt, kRsqrt, kSquare, kErf, kTanh };

GPTMED_CLONES void UnaryRange(int op, const float* x, float* y, int64_t n) {
  switch (op) {
    case kExp: for (int64_t i = 0; i < n; i++) y[i] = ExpApprox(x[i]); break;
    case kLog: for (int64_t i = 0; i < n; i++) y[i] = std::log(x[i]); break;
    case kNeg: for (int64_t i = 0; i < n; i++) y[i] = -x[i]; break;
    case kSqrt: for (int64_t i = 0; i < n; i++) y[i] = std::sqrt(x[i]); break;
    case kRsqrt: for (int64_t i = 0; i < n; i++) y[i] = 1.f / std::sqrt(x[i]); break;
    case kSquare: for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i]; break;
    case kErf: for (int64_t i = 0; i < n; i++) y[i] = std::erf(x[i]); break;
    case kTanh: for (int64_t i = 0; i < n; i++) y[i] = std::tanh(x[i]); break;
  }
}

// unary(op, x, y, n)
napi_value Unary(napi_env env, napi_callback_info info) {
  Args<4> a(env, info);
  const int64_t op = Int(env, a[0], "op"), n = Int(env, a[3], "n");
  if (op > kTanh) throw ArgError{"unary: unknown op"};
  const float* x = F32(env, a[1], n, "x");
  float* y = F32(env, a[2], n, "y");
  ParallelFor(n, 32768, [&](int64_t b, int64_t e) { UnaryRange(static_cast<int>(op), x + b, y + b, e - b); });
  return Undefined(env);
}

enum BinaryOp { kAdd = 0, kSub, kMul, kDiv };

// out[i] = a[i·sa] op b[i·sb] for i < n, sa and sb in {0, 1} (a scalar or a run).
GPTMED_CLONES void BinaryRun(int op, const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
#define GPTMED_RUN(EXPR)                                                                    \
  if (sa == 1 && sb == 1) for (int64_t i = 0; i < n; i++) { const float x = a[i], y = b[i]; out[i] = (EXPR); } \
  else if (sa == 1) { const float y = b[0]; for (int64_t i = 0; i < n; i++) { const float x = a[i]; out[i] = (EXPR); } } \
  else if (sb == 1) { const float x = a[0]; for (int64_t i = 0; i < n; i++) { const float y = b[i]; out[i] = (EXPR); } } \
  else { const float x = a[0], y = b[0]; for (int64_t i = 0; i < n; i++) out[i] = (EXPR); }
  switch (op) {
    case kAdd: GPTMED_RUN(x + y) break;
    case kSub: GPTMED_RUN(x - y) break;
    case kMul: GPTMED_RUN(x * y) break;
    case kDiv: GPTMED_RUN(x / y) break;
  }
#undef GPTMED_RUN
}

// binary(op, a, b, out, shape, stridesA, stridesB): shape is the output's, already collapsed to at most
// 4 dimensions (Int32Array); strides are in elements, 0 where that operand is broadcast.
napi_value Binary(napi_env env, napi_callback_info info) {
  Args<7> a(env, info);
  const int64_t op = Int(env, a[0], "op");
  if (op > kDiv) throw ArgError{"binary: unknown op"};
  const int32_t* shape = I32(env, a[4], 4, "shape");
  const int32_t* sa = I32(env, a[5], 4, "stridesA");
  const int32_t* sb = I32(env, a[6], 4, "stridesB");
  const int64_t inner = shape[3], outer = static_cast<int64_t>(shape[0]) * shape[1] * shape[2];
  int64_t extentA = 1, extentB = 1;
  for (int d = 0; d < 4; d++) {
    extentA += static_cast<int64_t>(shape[d] - 1) * sa[d];
    extentB += static_cast<int64_t>(shape[d] - 1) * sb[d];
  }
  if (sa[3] > 1 || sb[3] > 1) throw ArgError{"binary: innermost strides must be 0 or 1"};
  const float* A = F32(env, a[1], extentA, "a");
  const float* B = F32(env, a[2], extentB, "b");
  float* out = F32(env, a[3], outer * inner, "out");
  const int o = static_cast<int>(op);
  if (outer == 1) {
    ParallelFor(inner, 32768, [&](int64_t b, int64_t e) {
      BinaryRun(o, A + b * sa[3], sa[3], B + b * sb[3], sb[3], out + b, e - b);
    });
    return Undefined(env);
  }
  ParallelFor(outer, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, inner)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const int64_t i0 = r / (static_cast<int64_t>(shape[1]) * shape[2]), rest = r % (static_cast<int64_t>(shape[1]) * shape[2]);
      const int64_t i1 = rest / shape[2], i2 = rest % shape[2];
      const int64_t offA = i0 * sa[0] + i1 * sa[1] + i2 * sa[2], offB = i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
      BinaryRun(o, A + offA, sa[3], B + offB, sb[3], out + r * inner, inner);
    }
  });
  return Undefined(env);
}

enum ReduceOp { kSum = 0, kMax, kMean };

// reduceInner(op, x, out, rows, cols): out[r] = op over x[r, :]
napi_value ReduceInner(napi_env env, napi_callback_info info) {
  Args<5> a(env, info);
  const int64_t op = Int(env, a[0], "op"), rows = Int(env, a[3], "rows"), cols = Int(env, a[4], "cols");
  if (op > kMean) throw ArgError{"reduceInner: unknown op"};
  const float* x = F32(env, a[1], rows * cols, "x");
  float* out = F32(env, a[2], rows, "out");
  ParallelFor(rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, cols)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* row = x + r * cols;
      if (op == kMax) {
        float m = -INFINITY;
        for (int64_t j = 0; j < cols; j++) m = std::max(m, row[j]);
        out[r] = m;
      } else {
        // Eight partial sums: vectorises, and rounds no worse than one running sum.
        float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t j = 0;
        for (; j + 8 <= cols; j += 8)
          for (int t = 0; t < 8; t++) part[t] += row[j + t];
        float s = 0.f;
        for (; j < cols; j++) s += row[j];
        for (int t = 0; t < 8; t++) s += part[t];
        out[r] = op == kMean ? s / static_cast<float>(cols) : s;
      }
    }
  });
  return Undefined(env);
}

// reduceOuter(op, x, out, rows, cols): out[c] = op over x[:, c] (the gradient of a broadcast bias).
napi_value ReduceOuter(napi_env env, napi_callback_info info) {
  Args<5> a(env, info);
  const int64_t op = Int(env, a[0], "op"), rows = Int(env, a[3], "rows"), cols = Int(env, a[4], "cols");
  if (op > kMean) throw ArgError{"reduceOuter: unknown op"};
  const float* x = F32(env, a[1], rows * cols, "x");
  float* out = F32(env, a[2], cols, "out");
  ParallelFor(cols, std::max<int64_t>(16, 32768 / std::max<int64_t>(1, rows)), [&](int64_t b, int64_t e) {
    float* o = out + b;
    const int64_t w = e - b;
    const float* first = x + b;
    for (int64_t c = 0; c < w; c++) o[c] = first[c];
    for (int64_t r = 1; r < rows; r++) {
      const float* row = x + r * cols + b;
      if (op == kMax) {
        for (int64_t c = 0; c < w; c++) o[c] = std::max(o[c], row[c]);
      } else {
        for (int64_t c = 0; c < w; c++) o[c] += row[c];
      }
    }
    if (op == kMean)
      for (int64_t c = 0; c < w; c++) o[c] /= static_cast<float>(rows);
  });
  return Undefined(env);
}



// ---- fused training kernels: LayerNorm, GELU, attention's causal softmax, AdamW ------------------
// Each replaces a chain of element-wise tfjs ops by one pass, and saves only what its gradient needs:
// tfjs keeps every intermediate of a step (and its gradient) until the step ends, so fewer intermediates
// is less memory as well as less time. Formulas follow src/model/gpt.ts's stock path op for op.

// layerNorm(x, gamma, beta, y, mean, rstd, rows, cols, eps): y = (x − mean) · rstd · gamma + beta per row,
// rstd = 1 / sqrt(mean((x − mean)²) + eps); mean and rstd are kept for the gradient.
GPTMED_CLONES void LayerNormRow(const float* x, const float* g, const float* b, float* y, float* mean_out,
                                float* rstd_out, int64_t n, float eps) {
  float sum = 0.f;
  for (int64_t j = 0; j < n; j++) sum += x[j];
  const float mean = sum / static_cast<float>(n);
  float sq = 0.f;
  for (int64_t j = 0; j < n; j++) sq += (x[j] - mean) * (x[j] - mean);
  const float rstd = 1.f / std::sqrt(sq / static_cast<float>(n) + eps);
  for (int64_t j = 0; j < n; j++) y[j] = (x[j] - mean) * rstd * g[j] + b[j];
  *mean_out = mean;
  *rstd_out = rstd;
}

napi_value LayerNorm(napi_env env, napi_callback_info info) {
  Args<9> a(env, info);
  const int64_t rows = Int(env, a[6], "rows"), cols = Int(env, a[7], "cols");
  const float eps = static_cast<float>(Num(env, a[8], "eps"));
  const float* x = F32(env, a[0], rows * cols, "x");
  const float* g = F32(env, a[1], cols, "gamma");
  const float* b = F32(env, a[2], cols, "beta");
  float* y = F32(env, a[3], rows * cols, "y");
  float* mean = F32(env, a[4], rows, "mean");
  float* rstd = F32(env, a[5], rows, "rstd");
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) LayerNormRow(x + r * cols, g, b, y + r * cols, mean + r, rstd + r, cols, eps);
  });
  return Undefined(env);
}

// dx for one row: with xhat = (x − mean) · rstd and dxhat = dy · gamma,
// dx = rstd · (dxhat − mean(dxhat) − xhat · mean(dxhat · xhat)); dgamma += dy · xhat, dbeta += dy.
GPTMED_CLONES void LayerNormGradRow(const float* dy, const float* x, const float* g, float mean, float rstd,
                                    float* dx, float* dg, float* db, int64_t n) {
  float sum_dxhat = 0.f, sum_dxhat_xhat = 0.f;
  for (int64_t j = 0; j < n; j++) {
    const float xhat = (x[j] - mean) * rstd, dxhat = dy[j] * g[j];
    sum_dxhat += dxhat;
    sum_dxhat_xhat += dxhat * xhat;
    dg[j] += dy[j] * xhat;
    db[j] += dy[j];
  }
  const float m1 = sum_dxhat / static_cast<float>(n), m2 = sum_dxhat_xhat / static_cast<float>(n);
  for (int64_t j = 0; j < n; j++) dx[j] = rstd * (dy[j] * g[j] - m1 - (x[j] - mean) * rstd * m2);
}

// layerNormGrad(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, cols). Each thread sums dgamma and
// dbeta over its rows; the partial sums are added in thread order, so the result does not vary by run.
napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  Args<10> a(env, info);
  const int64_t rows = Int(env, a[8], "rows"), cols = Int(env, a[9], "cols");
  const float* dy = F32(env, a[0], rows * cols, "dy");
  const float* x = F32(env, a[1], rows * cols, "x");
  const float* g = F32(env, a[2], cols, "gamma");
  const float* mean = F32(env, a[3], rows, "mean");
  const float* rstd = F32(env, a[4], rows, "rstd");
  float* dx = F32(env, a[5], rows * cols, "dx");
  float* dg = F32(env, a[6], cols, "dgamma");
  float* db = F32(env, a[7], cols, "dbeta");
  const int threads = pool->threads();
  std::vector<float> partial(static_cast<size_t>(threads) * 2 * cols, 0.f);
  pool->Run([&](int id) {
    const int64_t r0 = rows * id / threads, r1 = rows * (id + 1) / threads;
    float* pg = partial.data() + static_cast<size_t>(id) * 2 * cols;
    for (int64_t r = r0; r < r1; r++) {
      LayerNormGradRow(dy + r * cols, x + r * cols, g, mean[r], rstd[r], dx + r * cols, pg, pg + cols, cols);
    }
  });
  for (int64_t j = 0; j < cols; j++) dg[j] = db[j] = 0.f;
  for (int t = 0; t < threads; t++) {
    const float* pg = partial.data() + static_cast<size_t>(t) * 2 * cols;
    for (int64_t j = 0; j < cols; j++) dg[j] += pg[j], db[j] += pg[cols + j];
  }
  return Undefined(env);
}

// erf(x) as a rational function of x on [-4, 4] (±1 beyond, where float erf is ±1): odd degree-13 numerator
// over even degree-8 denominator, the fit XLA and Eigen use for float, within a few ulp. Branch- and call-free
// so that it vectorises: std::erf is a scalar call and was most of GELU's time.
inline float ErfApprox(float x) {
  const float c = x > 4.f ? 4.f : (x < -4.f ? -4.f : x);
  const float x2 = c * c;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 - 2.10102402082508e-06f;
  p = p * x2 - 5.69250639462346e-05f;
  p = p * x2 - 7.34990630326855e-04f;
  p = p * x2 - 2.95459980854025e-03f;
  p = p * x2 - 1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 - 2.13374055278905e-04f;
  q = q * x2 - 1.68282697438203e-03f;
  q = q * x2 - 7.37332916720468e-03f;
  q = q * x2 - 1.42647390514189e-02f;
  return c * p / q;
}

// gelu(x, y, n): y = x/2 · (1 + erf(x/√2)) (torch.nn.GELU's exact form).
GPTMED_CLONES void GeluRange(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * 0.5f * (ErfApprox(x[i] * 0.70710678f) + 1.f);
}

// geluGrad(dy, x, dx, n): dx = dy · (Φ(x) + x · φ(x)).
GPTMED_CLONES void GeluGradRange(const float* dy, const float* x, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float cdf = 0.5f * (ErfApprox(x[i] * 0.70710678f) + 1.f);
    const float pdf = 0.39894228f * ExpApprox(-0.5f * x[i] * x[i]);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

napi_value Gelu(napi_env env, napi_callback_info info) {
  Args<3> a(env, info);
  const int64_t n = Int(env, a[2], "n");
  const float* x = F32(env, a[0], n, "x");
  float* y = F32(env, a[1], n, "y");
  ParallelFor(n, 32768, [&](int64_t b, int64_t e) { GeluRange(x + b, y + b, e - b); });
  return Undefined(env);
}

napi_value GeluGrad(napi_env env, napi_callback_info info) {
  Args<4> a(env, info);
  const int64_t n = Int(env, a[3], "n");
  const float* dy = F32(env, a[0], n, "dy");
  const float* x = F32(env, a[1], n, "x");
  float* dx = F32(env, a[2], n, "dx");
  ParallelFor(n, 32768, [&](int64_t b, int64_t e) { GeluGradRange(dy + b, x + b, dx + b, e - b); });
  return Undefined(env);
}

// causalSoftmax(x, y, rows, queries, keys, past, scale): attention weights from raw scores x [.., queries,
// keys]: row r is query i = r mod queries at position past + i, which sees keys 0..past + i; y is
// softmax(x · scale) over those and exactly 0 beyond (as the stock path's −1e9 mask gives after exp).
napi_value CausalSoftmax(napi_env env, napi_callback_info info) {
  Args<7> a(env, info);
  const int64_t rows = Int(env, a[2], "rows"), queries = Int(env, a[3], "queries"), keys = Int(env, a[4], "keys");
  const int64_t past = Int(env, a[5], "past");
  const float scale = static_cast<float>(Num(env, a[6], "scale"));
  if (queries == 0 || past + queries > keys) throw ArgError{"causalSoftmax: past + queries exceeds keys"};
  if (!(scale > 0.f)) throw ArgError{"causalSoftmax: scale must be positive"};
  const float* x = F32(env, a[0], rows * keys, "x");
  float* y = F32(env, a[1], rows * keys, "y");
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, keys)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t seen = past + r % queries + 1;
      ScaledSoftmaxRow(x + r * keys, y + r * keys, seen, scale);
      std::fill(y + r * keys + seen, y + (r + 1) * keys, 0.f);
    }
  });
  return Undefined(env);
}

// causalSoftmaxGrad(dy, y, dx, rows, cols, scale): dx = scale · y · (dy − Σ dy·y) per row (0 where y is).
napi_value CausalSoftmaxGrad(napi_env env, napi_callback_info info) {
  Args<6> a(env, info);
  const int64_t rows = Int(env, a[3], "rows"), cols = Int(env, a[4], "cols");
  const float scale = static_cast<float>(Num(env, a[5], "scale"));
  SoftmaxGradRows(F32(env, a[0], rows * cols, "dy"), F32(env, a[1], rows * cols, "y"), F32(env, a[2], rows * cols, "dx"), rows, cols, scale);
  return Undefined(env);
}

// adamW(p, m, v, g, pOut, mOut, vOut, n, settings): one AdamW update as src/train/optimizer.ts states it,
// settings = Float32Array [lr, beta1, beta2, eps, decay (the factor p is multiplied by), gradScale,
// correction1, correction2]. One pass instead of ~14 tensors of the parameter's size.
GPTMED_CLONES void AdamWRange(const float* p, const float* m, const float* v, const float* g, float* po, float* mo,
                              float* vo, int64_t n, const float* s) {
  const float lr = s[0], b1 = s[1], b2 = s[2], eps = s[3], decay = s[4], gs = s[5], c1 = s[6], c2 = s[7];
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i] * gs;
    const float mi = m[i] * b1 + gi * (1.f - b1);
    const float vi = v[i] * b2 + gi * gi * (1.f - b2);
    mo[i] = mi;
    vo[i] = vi;
    po[i] = p[i] * decay - mi / (std::sqrt(vi / c2) + eps) * (lr / c1);
  }
}

napi_value AdamW(napi_env env, napi_callback_info info) {
  Args<9> a(env, info);
  const int64_t n = Int(env, a[7], "n");
  const float* p = F32(env, a[0], n, "p");
  const float* m = F32(env, a[1], n, "m");
  const float* v = F32(env, a[2], n, "v");
  const float* g = F32(env, a[3], n, "g");
  float* po = F32(env, a[4], n, "pOut");
  float* mo = F32(env, a[5], n, "mOut");
  float* vo = F32(env, a[6], n, "vOut");
  const float* s = F32(env, a[8], 8, "settings");
  ParallelFor(n, 32768, [&](int64_t b, int64_t e) { AdamWRange(p + b, m + b, v + b, g + b, po + b, mo + b, vo + b, e - b, s); });
  return Undefined(env);
}

// dropout(x, keys, y, rows, rowSize, threshold, scale): src/backend/dropout.ts's counter-hash dropout, bit for
// bit: element i of row r keeps x · scale (the product in double, rounded once to float, as JavaScript does)
// where lowbias32(lowbias32(i + k0[r]) ^ k1[r]) >= threshold, else 0.
inline uint32_t LowBias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x21f0aaadu;
  x ^= x >> 15;
  x *= 0x735a2d97u;
  x ^= x >> 15;
  return x;
}

GPTMED_CLONES void DropoutRow(const float* x, float* y, int64_t n, uint32_t k0, uint32_t k1, uint32_t threshold, double scale) {
  for (int64_t i = 0; i < n; i++) {
    const uint32_t bits = LowBias32(LowBias32(static_cast<uint32_t>(i) + k0) ^ k1);
    y[i] = bits >= threshold ? static_cast<float>(static_cast<double>(x[i]) * scale) : 0.f;
  }
}

napi_value Dropout(napi_env env, napi_callback_info info) {
  Args<7> a(env, info);
  const int64_t rows = Int(env, a[3], "rows"), row_size = Int(env, a[4], "rowSize");
  const double threshold = Num(env, a[5], "threshold"), scale = Num(env, a[6], "scale");
  if (threshold < 0 || threshold > 4294967295.0) throw ArgError{"dropout: threshold must be a uint32"};
  const float* x = F32(env, a[0], rows * row_size, "x");
  const int32_t* keys = I32(env, a[1], 2 * rows, "keys");
  float* y = F32(env, a[2], rows * row_size, "y");
  const uint32_t t = static_cast<uint32_t>(threshold);
  // Split by element, not by row: a batch of 1 row is common (micro-batches, decoding).
  ParallelFor(rows * row_size, 32768, [&](int64_t b, int64_t e) {
    while (b < e) {
      const int64_t r = b / row_size, i = b % row_size, end = std::min(e, (r + 1) * row_size);
      const uint32_t k0 = static_cast<uint32_t>(keys[2 * r]) + static_cast<uint32_t>(i);
      DropoutRow(x + b, y + b, end - b, k0, static_cast<uint32_t>(keys[2 * r + 1]), t, scale);
      b = end;
    }
  });
  return Undefined(env);
}

// sumSquares(x, n): Σ x² in double (a gradient's contribution to the global norm for clipping).
napi_value SumSquares(napi_env env, napi_callback_info info) {
  Args<2> a(env, info);
  const int64_t n = Int(env, a[1], "n");
  const float* x = F32(env, a[0], n, "x");
  const int threads = n < 65536 ? 1 : pool->threads();
  std::vector<double> partial(threads, 0.0);
  auto part = [&](int id) {
    double s = 0.0;
    for (int64_t i = n * id / threads, e = n * (id + 1) / threads; i < e; i++) s += static_cast<double>(x[i]) * x[i];
    partial[id] = s;
  };
  if (threads == 1) part(0); else pool->Run([&](int id) { if (id < threads) part(id); });
  double total = 0.0;
  for (double s : partial) total += s;
  napi_value result;
  napi_create_double(env, total, &result);
  return result;
}

// ---- data movement -------------------------------------------------------------------------
// permute(x, y, shape, perm): y = x with its axes reordered (y's axis i is x's axis perm[i]);
// shape is x's, padded to 4 dimensions; the last axis stays last, so rows of shape[3] move whole.
// Also serves Identity (perm 0,1,2,3), SplitV and Concat along the last axis through copyColumns.
napi_value Permute(napi_env env, napi_callback_info info) {
  Args<4> a(env, info);
  const int32_t* shape = I32(env, a[2], 4, "shape");
  const int32_t* perm = I32(env, a[3], 4, "perm");
  if (perm[3] != 3) throw ArgError{"permute: the last axis must stay last"};
  const int64_t total = static_cast<int64_t>(shape[0]) * shape[1] * shape[2] * shape[3];
  const float* x = F32(env, a[0], total, "x");
  float* y = F32(env, a[1], total, "y");
  int64_t xstride[4];
  xstride[3] = 1;
  for (int d = 2; d >= 0; d--) xstride[d] = xstride[d + 1] * shape[d + 1];
  const int64_t o0 = shape[perm[0]], o1 = shape[perm[1]], o2 = shape[perm[2]], w = shape[3];
  const int64_t s0 = xstride[perm[0]], s1 = xstride[perm[1]], s2 = xstride[perm[2]];
  const int64_t rows = o0 * o1 * o2;
  if (rows == 1) {
    ParallelFor(w, 1 << 16, [&](int64_t b, int64_t e) { std::memcpy(y + b, x + b, (e - b) * sizeof(float)); });
    return Undefined(env);
  }
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, w)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const int64_t i0 = r / (o1 * o2), i1 = (r / o2) % o1, i2 = r % o2;
      std::memcpy(y + r * w, x + i0 * s0 + i1 * s1 + i2 * s2, w * sizeof(float));
    }
  });
  return Undefined(env);
}

// copyColumns(src, srcCols, srcFrom, dst, dstCols, dstFrom, rows, width): for each row r,
// dst[r, dstFrom..+width) = src[r, srcFrom..+width). SplitV and Concat along the last axis.
napi_value CopyColumns(napi_env env, napi_callback_info info) {
  Args<8> a(env, info);
  const int64_t srcCols = Int(env, a[1], "srcCols"), srcFrom = Int(env, a[2], "srcFrom");
  const int64_t dstCols = Int(env, a[4], "dstCols"), dstFrom = Int(env, a[5], "dstFrom");
  const int64_t rows = Int(env, a[6], "rows"), width = Int(env, a[7], "width");
  if (srcFrom + width > srcCols || dstFrom + width > dstCols) throw ArgError{"copyColumns: columns out of range"};
  const float* src = F32(env, a[0], rows * srcCols, "src");
  float* dst = F32(env, a[3], rows * dstCols, "dst");
  ParallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, width)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) std::memcpy(dst + r * dstCols + dstFrom, src + r * srcCols + srcFrom, width * sizeof(float));
  });
  return Undefined(env);
}

}  // namespace

namespace {

void Cleanup(void*) {
  delete pool;
  pool = nullptr;
}

// Defined at the end of this file (the kernels for KV-cached decoding).
void DefineDecodingKernels(napi_env env, napi_value exports);

napi_value Init(napi_env env, napi_value exports) {
  if (pool == nullptr) {
    pool = new Pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    napi_add_env_cleanup_hook(env, Cleanup, nullptr);
  }
  const napi_property_descriptor props[] = {
      {"openBlas", nullptr, Guarded<OpenBlas>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemm", nullptr, Guarded<Gemm>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmax", nullptr, Guarded<Softmax>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmaxGrad", nullptr, Guarded<SoftmaxGrad>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"crossEntropy", nullptr, Guarded<CrossEntropy>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"crossEntropyGrad", nullptr, Guarded<CrossEntropyGrad>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"permute", nullptr, Guarded<Permute>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"copyColumns", nullptr, Guarded<CopyColumns>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, Guarded<Unary>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, Guarded<Binary>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduceInner", nullptr, Guarded<ReduceInner>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduceOuter", nullptr, Guarded<ReduceOuter>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNorm", nullptr, Guarded<LayerNorm>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormGrad", nullptr, Guarded<LayerNormGrad>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gelu", nullptr, Guarded<Gelu>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"geluGrad", nullptr, Guarded<GeluGrad>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"causalSoftmax", nullptr, Guarded<CausalSoftmax>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"causalSoftmaxGrad", nullptr, Guarded<CausalSoftmaxGrad>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamW", nullptr, Guarded<AdamW>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumSquares", nullptr, Guarded<SumSquares>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"dropout", nullptr, Guarded<Dropout>, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  DefineDecodingKernels(env, exports);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)

// ==== Kernels for KV-cached decoding (src/model/native-decoder.ts) ==============================
// A decoding step of one sequence is a chain of matrix-vector products. OpenBLAS 0.3.21's sgemm runs
// an m = 1 product through its packing path, which copies the whole matrix first: for the LM head
// (8000 x 128) cblas_sgemv took 61-66 us where sgemm took ~255 us. gemv calls cblas_sgemv from the
// library openBlas() loaded, on the calling thread only: at this size waking the pool costs about as
// much as the product.
namespace {

using SgemvFn = void (*)(int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
SgemvFn sgemv = nullptr;

// cblas_sgemv from the library that holds the sgemm openBlas() found (found by its address, so that
// openBlas() needs no change).
SgemvFn FindSgemv() {
  if (sgemv != nullptr || sgemm == nullptr) return sgemv;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(sgemm), &info) == 0 || info.dli_fname == nullptr) return nullptr;
  void* lib = dlopen(info.dli_fname, RTLD_NOW | RTLD_LOCAL);
  if (lib != nullptr) sgemv = reinterpret_cast<SgemvFn>(dlsym(lib, "cblas_sgemv"));
  return sgemv;
}

// gemv(a, x, y, bias|null, rows, cols, transposeA): y = op(A) · x (+ bias) for a row-major
// A [rows, cols]; op(A) = A^T (x has rows elements, y cols) when transposeA, else A (x cols, y rows).
napi_value Gemv(napi_env env, napi_callback_info info) {
  if (FindSgemv() == nullptr) throw ArgError{"gemv: openBlas() has not succeeded, or its library lacks cblas_sgemv"};
  Args<7> a(env, info);
  const int64_t rows = Int(env, a[4], "rows"), cols = Int(env, a[5], "cols");
  const bool ta = Bool(env, a[6]);
  const int64_t n_in = ta ? rows : cols, n_out = ta ? cols : rows;
  const float* A = F32(env, a[0], rows * cols, "a");
  const float* x = F32(env, a[1], n_in, "x");
  float* y = F32(env, a[2], n_out, "y");
  const float* bias = F32OrNull(env, a[3], n_out, "bias");
  float beta = 0.f;
  if (bias != nullptr) {
    std::memcpy(y, bias, n_out * sizeof(float));
    beta = 1.f;
  }
  sgemv(kRowMajor, ta ? kTrans : kNoTrans, static_cast<int>(rows), static_cast<int>(cols), 1.f, A,
        static_cast<int>(cols), x, 1, beta, y, 1);
  return Undefined(env);
}

// Decoding's GELU is the training kernel gelu above (the same formula and erf fit, in place allowed).

void DefineDecodingKernels(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"gemv", nullptr, Guarded<Gemv>, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

}  // namespace
