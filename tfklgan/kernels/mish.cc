// Mish, y = x * tanh(softplus(x)), and its gradient, each in one pass.
//
// TensorFlow runs Mish as Softplus, Tanh and Mul, and its gradient as
// Mul(dy, t), Mul(x, dy), TanhGrad, Sigmoid, Mul and AddN: nine passes over
// memory. These kernels evaluate the same Eigen functors on the same values
// in the same order (TensorFlow's softplus_op.h and cwise_ops_gradients.h),
// so their results equal those ops' bit for bit. tfklgan.native compiles this
// file without FMA contraction for that reason.
//
// TfklganMish:     x -> y, t = tanh(softplus(x)) (kept for the gradient).
// TfklganMishGrad: dy, x, t -> dx = dy t + (x dy)(1 - t^2) sigmoid(x).

#define EIGEN_USE_THREADS
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tfklgan {
namespace {

namespace ei = Eigen::internal;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using Packet = ei::packet_traits<float>::type;
constexpr int kPacket = ei::unpacket_traits<Packet>::size;

// TensorFlow's Softplus: x above -threshold, exp(x) below threshold, else
// log1p(exp(x)); exp(x) is computed once here (the op computes it twice).
const float kThreshold =
    Eigen::numext::log(Eigen::NumTraits<float>::epsilon()) + 2.0f;

// Packets<N> handles N consecutive packets stage by stage, one loop per
// function, so that the processor overlaps the packets' independent exp,
// log1p and tanh (one chain per packet ran at half the speed).
struct Forward {
  template <int N>
  static void Packets(const float* x, float* y, float* t) {
    Packet xv[N], e[N], softplus[N], tv[N];
    for (int k = 0; k < N; ++k) xv[k] = ei::ploadu<Packet>(x + k * kPacket);
    for (int k = 0; k < N; ++k) e[k] = ei::scalar_exp_op<float>().packetOp(xv[k]);
    for (int k = 0; k < N; ++k) {
      softplus[k] = ei::pselect(
          ei::pcmp_lt(ei::pset1<Packet>(-kThreshold), xv[k]), xv[k],
          ei::pselect(ei::pcmp_lt(xv[k], ei::pset1<Packet>(kThreshold)), e[k],
                      ei::scalar_log1p_op<float>().packetOp(e[k])));
    }
    for (int k = 0; k < N; ++k) tv[k] = ei::scalar_tanh_op<float>().packetOp(softplus[k]);
    for (int k = 0; k < N; ++k) {
      ei::pstoreu(t + k * kPacket, tv[k]);
      ei::pstoreu(y + k * kPacket, ei::pmul(xv[k], tv[k]));
    }
  }
  static void Scalar(const float* x, float* y, float* t) {
    const float e = ei::scalar_exp_op<float>()(*x);
    const float softplus =
        *x > -kThreshold ? *x
                         : (*x < kThreshold ? e : ei::scalar_log1p_op<float>()(e));
    *t = ei::scalar_tanh_op<float>()(softplus);
    *y = *x * *t;
  }
};

struct Backward {
  template <int N>
  static void Packets(const float* dy, const float* x, const float* t, float* dx) {
    Packet sigmoid[N];
    for (int k = 0; k < N; ++k) {
      sigmoid[k] = ei::scalar_logistic_op<float>().packetOp(ei::ploadu<Packet>(x + k * kPacket));
    }
    for (int k = 0; k < N; ++k) {
      const Packet d = ei::ploadu<Packet>(dy + k * kPacket);
      const Packet xv = ei::ploadu<Packet>(x + k * kPacket);
      const Packet tv = ei::ploadu<Packet>(t + k * kPacket);
      const Packet through_product = ei::pmul(d, tv);
      const Packet through_tanh = ei::pmul(
          ei::pmul(xv, d), ei::psub(ei::pset1<Packet>(1.0f), ei::pmul(tv, tv)));
      ei::pstoreu(dx + k * kPacket,
                  ei::padd(through_product, ei::pmul(through_tanh, sigmoid[k])));
    }
  }
  static void Scalar(const float* dy, const float* x, const float* t, float* dx) {
    const float through_tanh = (*x * *dy) * (1.0f - *t * *t);
    *dx = *dy * *t + through_tanh * ei::scalar_logistic_op<float>()(*x);
  }
};

// Blocks of kUnroll packets (16 measured faster than 32; 4, 8, 16 and 64 with
// log1p and tanh in one loop were all slower) in parallel shards, then single
// packets; the last n % kPacket elements with the scalar functors, as Eigen's
// executor evaluates the tail of an expression.
constexpr int kUnroll = 16;

template <typename Kernel, typename... Pointers>
void Run(OpKernelContext* context, int64_t n, double cycles_per_element,
         Pointers... pointers) {
  constexpr int64_t kBlock = kUnroll * kPacket;
  const int64_t blocks = n / kBlock;
  const Eigen::TensorOpCost cost(kBlock * sizeof(float) * sizeof...(Pointers),
                                 kBlock * sizeof(float), kBlock * cycles_per_element);
  context->eigen_cpu_device().parallelFor(
      blocks, cost, [&](Eigen::Index begin, Eigen::Index end) {
        for (Eigen::Index i = begin; i < end; ++i) {
          Kernel::template Packets<kUnroll>((pointers + i * kBlock)...);
        }
      });
  int64_t i = blocks * kBlock;
  for (; i + kPacket <= n; i += kPacket) Kernel::template Packets<1>((pointers + i)...);
  for (; i < n; ++i) Kernel::Scalar((pointers + i)...);
}

class MishOp : public OpKernel {
 public:
  explicit MishOp(OpKernelConstruction* context) : OpKernel(context) {}
  void Compute(OpKernelContext* context) override {
    const Tensor& x = context->input(0);
    Tensor* y = nullptr;
    Tensor* t = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, x.shape(), &y));
    OP_REQUIRES_OK(context, context->allocate_output(1, x.shape(), &t));
    Run<Forward>(context, x.NumElements(), 100.0, x.flat<float>().data(),
                 y->flat<float>().data(), t->flat<float>().data());
  }
};

class MishGradOp : public OpKernel {
 public:
  explicit MishGradOp(OpKernelConstruction* context) : OpKernel(context) {}
  void Compute(OpKernelContext* context) override {
    const Tensor& dy = context->input(0);
    const Tensor& x = context->input(1);
    const Tensor& t = context->input(2);
    OP_REQUIRES(context, dy.shape() == x.shape() && dy.shape() == t.shape(),
                tensorflow::errors::InvalidArgument(
                    "TfklganMishGrad: dy, x and t must have one shape, got ",
                    dy.shape().DebugString(), ", ", x.shape().DebugString(),
                    " and ", t.shape().DebugString()));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, dy.shape(), &dx));
    Run<Backward>(context, dy.NumElements(), 40.0, dy.flat<float>().data(),
                  x.flat<float>().data(), t.flat<float>().data(),
                  dx->flat<float>().data());
  }
};

REGISTER_OP("TfklganMish")
    .Input("x: float")
    .Output("y: float")
    .Output("t: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(0));
      return absl::OkStatus();
    });

REGISTER_OP("TfklganMishGrad")
    .Input("dy: float")
    .Input("x: float")
    .Input("t: float")
    .Output("dx: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("TfklganMish").Device(tensorflow::DEVICE_CPU), MishOp);
REGISTER_KERNEL_BUILDER(Name("TfklganMishGrad").Device(tensorflow::DEVICE_CPU), MishGradOp);

}  // namespace
}  // namespace tfklgan
