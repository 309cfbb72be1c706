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

struct Forward {
  static void Packets(const float* x, float* y, float* t) {
    const Packet xv = ei::ploadu<Packet>(x);
    const Packet e = ei::scalar_exp_op<float>().packetOp(xv);
    const Packet softplus = ei::pselect(
        ei::pcmp_lt(ei::pset1<Packet>(-kThreshold), xv), xv,
        ei::pselect(ei::pcmp_lt(xv, ei::pset1<Packet>(kThreshold)), e,
                    ei::scalar_log1p_op<float>().packetOp(e)));
    const Packet tv = ei::scalar_tanh_op<float>().packetOp(softplus);
    ei::pstoreu(t, tv);
    ei::pstoreu(y, ei::pmul(xv, tv));
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
  static void Packets(const float* dy, const float* x, const float* t, float* dx) {
    const Packet d = ei::ploadu<Packet>(dy);
    const Packet xv = ei::ploadu<Packet>(x);
    const Packet tv = ei::ploadu<Packet>(t);
    const Packet through_product = ei::pmul(d, tv);
    const Packet through_tanh = ei::pmul(
        ei::pmul(xv, d), ei::psub(ei::pset1<Packet>(1.0f), ei::pmul(tv, tv)));
    const Packet sigmoid = ei::scalar_logistic_op<float>().packetOp(xv);
    ei::pstoreu(dx, ei::padd(through_product, ei::pmul(through_tanh, sigmoid)));
  }
  static void Scalar(const float* dy, const float* x, const float* t, float* dx) {
    const float through_tanh = (*x * *dy) * (1.0f - *t * *t);
    *dx = *dy * *t + through_tanh * ei::scalar_logistic_op<float>()(*x);
  }
};

// Whole packets in parallel shards; the last n % kPacket elements with the
// scalar functors, as Eigen's executor evaluates the tail of an expression.
template <typename Kernel, typename... Pointers>
void Run(OpKernelContext* context, int64_t n, double cycles_per_element,
         Pointers... pointers) {
  const int64_t packets = n / kPacket;
  const Eigen::TensorOpCost cost(kPacket * sizeof(float) * sizeof...(Pointers),
                                 kPacket * sizeof(float),
                                 kPacket * cycles_per_element);
  context->eigen_cpu_device().parallelFor(
      packets, cost, [&](Eigen::Index begin, Eigen::Index end) {
        for (Eigen::Index i = begin; i < end; ++i) {
          Kernel::Packets((pointers + i * kPacket)...);
        }
      });
  for (int64_t i = packets * kPacket; i < n; ++i) Kernel::Scalar((pointers + i)...);
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
