// Writes the seed corpora of the fuzz targets (committed under tests/fuzz/corpus/; see README.md):
//   icl_fuzz_corpus <dir>   ->  <dir>/safetensors/*.safetensors, <dir>/checkpoint/*.safetensors,
//                               <dir>/construct/*.safetensors
// Deterministic (icl::Rng), so re-running it reproduces the committed files byte for byte.
#include <cstdio>
#include <exception>
#include <string>

#include "construct_model.hpp"
#include "fuzz_model.hpp"

namespace {

void write(const icl::io::SafeTensors& st, const std::string& path) {
  st.save(path);
  std::printf("%s (%zu bytes)\n", path.c_str(), st.to_bytes().size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  try {
    const std::string dir = argv[1];
    using icl::io::DType;
    using icl::io::SafeTensors;
    {
      write(SafeTensors{}, dir + "/safetensors/empty.safetensors");
      SafeTensors a;
      Eigen::MatrixXf w(2, 3);
      w << 1, -2, 3.5f, 0.25f, 1e-3f, -7;
      a.put("w", w);
      write(a, dir + "/safetensors/matrix_f32.safetensors");
      SafeTensors b;
      b.put("b", Eigen::Vector3d(0.5, -1, 2));
      b.metadata["format"] = "pt";
      b.metadata["note"] = "seed \"quoted\" \\ \xc3\xa9";
      write(b, dir + "/safetensors/vector_f64_metadata.safetensors");
      SafeTensors c;
      c.put_scalar("s", 3.0);
      c.put_nd("t", {2, 1, 2}, std::vector<double>{1, 2, 3, 4}, DType::F32);
      c.put_matrix("m", Eigen::Vector2d(4, 5));
      write(c, dir + "/safetensors/scalar_3d_mixed.safetensors");
      SafeTensors z;  // a zero-element tensor next to a non-empty one (once: memcpy on null, span order)
      z.put_nd("empty", {0, 3}, std::vector<double>{}, DType::F32);
      z.put("x", Eigen::Vector2d(1, 2));
      write(z, dir + "/safetensors/zero_element.safetensors");
    }
    {
      const auto cfg = icl_fuzz::config();
      icl_fuzz::Model m0 = icl_fuzz::make_model(1, 1);
      icl_fuzz::Trainer t0(m0, cfg);
      write(t0.checkpoint(), dir + "/checkpoint/step0.safetensors");
      for (int s = 0; s < 3; ++s) t0.train_step();
      write(t0.checkpoint(), dir + "/checkpoint/step3.safetensors");
      auto ams = cfg;
      ams.optimizer.amsgrad = true;
      icl_fuzz::Model m1 = icl_fuzz::make_model(1, 2);
      icl_fuzz::Trainer t1(m1, ams);
      t1.train_step();
      write(t1.checkpoint(), dir + "/checkpoint/amsgrad_step1.safetensors");
      icl_fuzz::Model m2 = icl_fuzz::make_model(2, 3);
      icl_fuzz::Trainer t2(m2, cfg);
      write(t2.checkpoint(), dir + "/checkpoint/two_layers.safetensors");
    }
    {  // constructed models of icl_fuzz::ConstructModel's type (construct_model.hpp)
      namespace ct = icl::construct;
      write(ct::gd_transformer<float, 1>(1, 0.1, 0.05).to_safetensors(),
            dir + "/construct/sgd_n1.safetensors");
      Eigen::VectorXf w(1);
      w << 0.5f;
      write(ct::theorem1_transformer<float, 1>(w, 0.1, 0.3).to_safetensors(),
            dir + "/construct/theorem1.safetensors");
      // chain.n = 2 (13 layers) without operand_hints, as files written before the calibrated range
      const SafeTensors two = ct::gd_transformer<float, 1>(2, 0.05, 0.0).to_safetensors();
      SafeTensors old;
      old.metadata = two.metadata;
      old.metadata.erase("range.margin");
      old.metadata.erase("range.calibration");
      for (const auto& name : two.names())
        if (name != "operand_hints")
          old.put_nd(name, two.info(name).shape, two.get_nd(name), two.info(name).dtype);
      write(old, dir + "/construct/sgd_n2_no_range.safetensors");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "icl_fuzz_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
