// Verilator driver of the emitted SME tile (sme_tile): loads tile images and streams input
// vectors at full rate, for whole-network inference on the RTL (sim/verilator_tile.py builds
// and runs it; that module documents the command file and the result file).
//
// Stream rule (amaranth.lib.stream): a transfer happens on a rising edge where valid and ready
// are both high.  The driver keeps i_load/i_vec valid whenever it has data and o_vec ready
// always high (no idle, no backpressure: the benches in sim/ cover those).  Verilator spells a
// double underscore in a port name as "___05F" (i_load__valid -> i_load___05Fvalid).
//
// argv: cmd_file out_file then the payload and status field layout, as offset/width pairs
// taken from rtl/layouts.py by the Python side (never hard-coded here):
//   load.data.off load.last.off vin.data.off vin.last.off vout.data.off vout.data.width
//   vout.last.off status.busy.off status.loaded.off status.error.off status.error.width
//   status.clip.off status.clip.width max_cycles
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "Vsme_tile.h"
#include "verilated.h"

namespace {

struct Layout {
    int load_data, load_last, vin_data, vin_last, vout_data, vout_width, vout_last;
    int busy, loaded, err, err_w, clip, clip_w;
    uint64_t max_cycles;
};

uint64_t field(uint64_t v, int off, int width) {
    return (v >> off) & (width >= 64 ? ~0ull : ((1ull << width) - 1));
}

class Driver {
  public:
    Driver(Vsme_tile* top, const Layout& lay) : top_(top), lay_(lay) {}

    void reset() {
        top_->__SYM__abort = 0;   // "abort" is a C library name: Verilator renames it
        top_->i_load___05Fvalid = 0;
        top_->i_vec___05Fvalid = 0;
        top_->o_vec___05Fready = 0;
        top_->rst = 1;
        tick();
        tick();
        top_->rst = 0;
        tick();
    }

    // One clock cycle; returns whether i_load, i_vec and o_vec transferred at its edge.
    void tick(bool* load_fire = nullptr, bool* vec_fire = nullptr, bool* out_fire = nullptr,
              uint64_t* out_payload = nullptr) {
        top_->clk = 0;
        top_->eval();
        if (load_fire) *load_fire = top_->i_load___05Fvalid && top_->i_load___05Fready;
        if (vec_fire) *vec_fire = top_->i_vec___05Fvalid && top_->i_vec___05Fready;
        if (out_fire) *out_fire = top_->o_vec___05Fvalid && top_->o_vec___05Fready;
        if (out_payload) *out_payload = top_->o_vec___05Fpayload;
        top_->clk = 1;
        top_->eval();
        if (++cycles_ > lay_.max_cycles) {
            std::fprintf(stderr, "tile_driver: more than %llu cycles\n",
                         (unsigned long long)lay_.max_cycles);
            std::exit(3);
        }
    }

    uint64_t status() {
        top_->clk = 0;
        top_->eval();
        return top_->status;
    }

    // Send a load frame; wait until the controller is idle.  Returns the status word.
    uint64_t load(const std::vector<uint32_t>& words) {
        size_t i = 0;
        while (i < words.size()) {
            top_->i_load___05Fvalid = 1;
            top_->i_load___05Fpayload = ((uint64_t)words[i] << lay_.load_data) |
                                    ((uint64_t)(i + 1 == words.size()) << lay_.load_last);
            bool fire = false;
            tick(&fire);
            if (fire) ++i;
        }
        top_->i_load___05Fvalid = 0;
        tick();
        while (field(status(), lay_.busy, 1)) tick();
        return status();
    }

    // Stream m vectors of k inputs; collect m*n outputs (sign-extended).
    void vectors(const std::vector<uint32_t>& x, uint32_t m, uint32_t k, uint32_t n,
                 std::vector<int64_t>* out) {
        size_t sent = 0, total_in = (size_t)m * k, total_out = (size_t)m * n;
        out->clear();
        out->reserve(total_out);
        top_->o_vec___05Fready = 1;
        while (out->size() < total_out) {
            if (sent < total_in) {
                top_->i_vec___05Fvalid = 1;
                top_->i_vec___05Fpayload = ((uint64_t)x[sent] << lay_.vin_data) |
                                       ((uint64_t)(sent % k == k - 1) << lay_.vin_last);
            } else {
                top_->i_vec___05Fvalid = 0;
            }
            bool vf = false, of = false;
            uint64_t p = 0;
            tick(nullptr, &vf, &of, &p);
            if (vf) ++sent;
            if (of) {
                uint64_t d = field(p, lay_.vout_data, lay_.vout_width);
                int shift = 64 - lay_.vout_width;
                out->push_back((int64_t)(d << shift) >> shift);
            }
        }
        top_->i_vec___05Fvalid = 0;
        top_->o_vec___05Fready = 0;
        tick();
    }

    uint64_t cycles() const { return cycles_; }

  private:
    Vsme_tile* top_;
    Layout lay_;
    uint64_t cycles_ = 0;
};

bool read_u32(FILE* f, uint32_t* v) { return std::fread(v, 4, 1, f) == 1; }

}  // namespace

int main(int argc, char** argv) {
    if (argc != 17) {
        std::fprintf(stderr, "usage: tile_driver CMD OUT <14 layout numbers>\n");
        return 2;
    }
    Layout lay;
    int* fields[] = {&lay.load_data, &lay.load_last, &lay.vin_data, &lay.vin_last,
                     &lay.vout_data, &lay.vout_width, &lay.vout_last, &lay.busy, &lay.loaded,
                     &lay.err, &lay.err_w, &lay.clip, &lay.clip_w};
    for (int i = 0; i < 13; ++i) *fields[i] = std::atoi(argv[3 + i]);
    lay.max_cycles = std::strtoull(argv[16], nullptr, 10);
    FILE* in = std::fopen(argv[1], "rb");
    FILE* out = std::fopen(argv[2], "wb");
    if (!in || !out) {
        std::fprintf(stderr, "tile_driver: cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    VerilatedContext ctx;
    Vsme_tile top(&ctx);
    Driver drv(&top, lay);
    drv.reset();
    uint32_t cmd;
    std::vector<uint32_t> buf;
    std::vector<int64_t> res;
    while (read_u32(in, &cmd) && cmd != 0) {
        if (cmd == 1) {                      // load: n, words
            uint32_t n;
            read_u32(in, &n);
            buf.resize(n);
            if (std::fread(buf.data(), 4, n, in) != n) return 4;
            uint64_t st = drv.load(buf);
            uint32_t rec[2] = {(uint32_t)field(st, lay.err, lay.err_w),
                               (uint32_t)field(st, lay.loaded, 1)};
            std::fwrite(rec, 4, 2, out);
        } else if (cmd == 2) {               // vectors: m, k, n, m*k inputs
            uint32_t m, k, n;
            read_u32(in, &m);
            read_u32(in, &k);
            read_u32(in, &n);
            buf.resize((size_t)m * k);
            if (std::fread(buf.data(), 4, buf.size(), in) != buf.size()) return 4;
            uint64_t c0 = drv.cycles();
            drv.vectors(buf, m, k, n, &res);
            uint64_t rec[2] = {drv.cycles() - c0,
                               field(drv.status(), lay.clip, lay.clip_w)};
            std::fwrite(res.data(), 8, res.size(), out);
            std::fwrite(rec, 8, 2, out);
        } else {
            std::fprintf(stderr, "tile_driver: unknown command %u\n", cmd);
            return 4;
        }
    }
    std::fclose(out);
    top.final();
    return 0;
}
