#include "node/model/checkpoint.hpp"

#include <flatbuffers/flatbuffers.h>

#include <cmath>
#include <cstring>
#include <string>

#include "protocol/checkpoint_generated.h"
#include "protocol/durable_file.hpp"
#include "protocol/envelope.hpp"
#include "protocol/aligned.hpp"
#include "protocol/limits.hpp"

namespace starling::model {
namespace {

namespace wire = starling::wire;

// State tensors any known optimizer keeps (Adam's two moments); checked before copying, because
// FlatBuffers lets many offsets share one large table and the Verifier counts each visit.
constexpr std::size_t kMaxOptimizerStates = 2;
constexpr std::string_view kInMemoryName = "(in memory)";

Error fail(ErrorCode code, std::string_view name, const std::string& what) {
    return make_error(code, "checkpoint '" + std::string(name) + "': " + what);
}

// ---- Semantic rules: the same for a checkpoint about to be saved and one just read. ----

// Parameters the widths call for, once the widths themselves are within limits.
Result<std::uint64_t> parameters_for(const std::vector<std::uint32_t>& widths, ErrorCode code,
                                     std::string_view name) {
    if (widths.size() < 2 || widths.size() > limits::kMaxLayers + 1)
        return fail(code, name,
                    std::to_string(widths.size()) + " widths, expected 2.." +
                        std::to_string(limits::kMaxLayers + 1));
    for (std::size_t i = 0; i < widths.size(); ++i) {
        if (widths[i] == 0 || widths[i] > limits::kMaxLayerNeurons)
            return fail(code, name,
                        "widths[" + std::to_string(i) + "] = " + std::to_string(widths[i]) +
                            ", expected 1.." + std::to_string(limits::kMaxLayerNeurons));
    }
    std::uint64_t total = 0;  // at most 64 layers of 2^40 + 2^20: no overflow
    for (std::size_t i = 1; i < widths.size(); ++i)
        total += std::uint64_t{widths[i - 1]} * widths[i] + widths[i];
    if (total > limits::kMaxModelParameters)
        return fail(ErrorCode::too_large, name,
                    "widths need " + std::to_string(total) + " parameters, over the limit of " +
                        std::to_string(limits::kMaxModelParameters));
    return total;
}

Status check_finite(const std::vector<float>& values, const std::string& field, ErrorCode code,
                    std::string_view name) {
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i]))
            return fail(code, name, field + "[" + std::to_string(i) + "] is not finite");
    }
    return Ok{};
}

std::size_t states_for(std::string_view optimizer) {
    if (optimizer == "sgd") return 1;   // velocity
    if (optimizer == "adam") return 2;  // first and second moments
    return 0;
}

Status check_optimizer(const Checkpoint& c, ErrorCode code, std::string_view name) {
    const std::size_t want = states_for(c.optimizer);
    if (want == 0)
        return fail(code, name,
                    "optimizer of " + std::to_string(c.optimizer.size()) +
                        " bytes is neither 'sgd' nor 'adam'");
    if (c.optimizer_state.size() != want)
        return fail(code, name,
                    c.optimizer + " needs " + std::to_string(want) + " state vectors, found " +
                        std::to_string(c.optimizer_state.size()));
    for (std::size_t k = 0; k < want; ++k) {
        const std::string field = "optimizer_state[" + std::to_string(k) + "]";
        if (c.optimizer_state[k].size() != c.parameters.size())
            return fail(code, name,
                        field + " has " + std::to_string(c.optimizer_state[k].size()) +
                            " values, parameters has " + std::to_string(c.parameters.size()));
        if (auto s = check_finite(c.optimizer_state[k], field, code, name); !s) return s;
    }
    return Ok{};
}

Status validate(const Checkpoint& c, ErrorCode code, std::string_view name) {
    const auto expected = parameters_for(c.widths, code, name);
    if (!expected) return expected.error();
    if (c.parameters.size() != *expected)
        return fail(code, name,
                    "parameters has " + std::to_string(c.parameters.size()) +
                        " values, the widths need " + std::to_string(*expected));
    if (auto s = check_finite(c.parameters, "parameters", code, name); !s) return s;
    if (!c.served.empty()) {
        if (c.served.size() != c.parameters.size())
            return fail(code, name,
                        "served has " + std::to_string(c.served.size()) +
                            " values, parameters has " + std::to_string(c.parameters.size()));
        if (auto s = check_finite(c.served, "served", code, name); !s) return s;
    }
    return check_optimizer(c, code, name);
}

// ---- Encoding. ----

flatbuffers::Offset<wire::Tensor> build_tensor(flatbuffers::FlatBufferBuilder& fbb,
                                               const std::vector<float>& values) {
    const std::uint32_t count = static_cast<std::uint32_t>(values.size());
    const auto shape = fbb.CreateVector(&count, 1);
    return wire::CreateTensor(fbb, shape, fbb.CreateVector(values));
}

Result<std::vector<std::uint8_t>> encode(const Checkpoint& c, std::string_view name) {
    if (auto s = validate(c, ErrorCode::invalid_argument, name); !s) return s.error();

    const std::size_t floats =
        c.parameters.size() * (1 + c.optimizer_state.size()) + c.served.size();
    flatbuffers::FlatBufferBuilder fbb(floats * sizeof(float) + 1024);
    const auto parameters = build_tensor(fbb, c.parameters);
    std::vector<flatbuffers::Offset<wire::Tensor>> states;
    for (const auto& state : c.optimizer_state) states.push_back(build_tensor(fbb, state));
    const auto served =
        c.served.empty() ? flatbuffers::Offset<wire::Tensor>() : build_tensor(fbb, c.served);
    const auto root = wire::CreateCheckpoint(
        fbb, fbb.CreateVector(c.widths), parameters, fbb.CreateString(c.optimizer),
        fbb.CreateVector(states), c.step, c.samples_seen, c.epoch, c.seed, served);
    wire::FinishCheckpointBuffer(fbb, root);

    if (kEnvelopeHeaderBytes + fbb.GetSize() > limits::kMaxCheckpointBytes)
        return fail(ErrorCode::too_large, name,
                    std::to_string(fbb.GetSize()) + " bytes, over the limit of " +
                        std::to_string(limits::kMaxCheckpointBytes));
    return seal_envelope(kCheckpointKind, kCheckpointFormatVersion,
                         {fbb.GetBufferPointer(), fbb.GetSize()});
}

// ---- Decoding untrusted bytes. ----

Result<const wire::Checkpoint*> verify(std::span<const std::uint8_t> payload,
                                       std::string_view name) {
    flatbuffers::Verifier::Options options;
    options.max_depth = limits::kFlatbuffersMaxDepth;
    options.max_tables = limits::kFlatbuffersMaxTables;
    flatbuffers::Verifier verifier(payload.data(), payload.size(), options);
    if (!wire::VerifyCheckpointBuffer(verifier))
        return fail(ErrorCode::malformed, name,
                    "payload is not a well-formed checkpoint FlatBuffer "
                    "(identifier, bounds, required fields, depth or table count)");
    return wire::GetCheckpoint(payload.data());
}

Result<std::vector<float>> tensor_values(const wire::Tensor& tensor, const std::string& field,
                                         std::string_view name) {
    const auto& shape = *tensor.shape();
    const auto& values = *tensor.values();
    if (shape.size() == 0 || shape.size() > limits::kMaxTensorDims)
        return fail(ErrorCode::malformed, name,
                    field + " has " + std::to_string(shape.size()) + " dimensions, expected 1.." +
                        std::to_string(limits::kMaxTensorDims));
    std::uint64_t product = 1;  // stays below 2^32 * 2^32: we stop once it exceeds the count
    for (const std::uint32_t dim : shape) {
        product *= dim;
        if (product > values.size()) break;
    }
    if (product != values.size())
        return fail(
            ErrorCode::malformed, name,
            field + "'s shape does not match its " + std::to_string(values.size()) + " values");
    return std::vector<float>(values.begin(), values.end());
}

Result<Checkpoint> from_wire(const wire::Checkpoint& root, std::string_view name) {
    Checkpoint c;
    c.widths.assign(root.widths()->begin(), root.widths()->end());
    auto parameters = tensor_values(*root.parameters(), "parameters", name);
    if (!parameters) return parameters.error();
    c.parameters = std::move(*parameters);
    c.optimizer = root.optimizer()->str();
    if (const auto* states = root.optimizer_state()) {
        if (states->size() > kMaxOptimizerStates)
            return fail(ErrorCode::malformed, name,
                        std::to_string(states->size()) + " optimizer state tensors, at most " +
                            std::to_string(kMaxOptimizerStates));
        for (flatbuffers::uoffset_t k = 0; k < states->size(); ++k) {
            auto state =
                tensor_values(*states->Get(k), "optimizer_state[" + std::to_string(k) + "]", name);
            if (!state) return state.error();
            c.optimizer_state.push_back(std::move(*state));
        }
    }
    if (const auto* served = root.served()) {
        auto values = tensor_values(*served, "served", name);
        if (!values) return values.error();
        c.served = std::move(*values);
    }
    c.step = root.step();
    c.samples_seen = root.samples_seen();
    c.epoch = root.epoch();
    c.seed = root.seed();
    return c;
}

}  // namespace

Result<std::vector<std::uint8_t>> encode_checkpoint(const Checkpoint& checkpoint) {
    return encode(checkpoint, kInMemoryName);
}

Result<Checkpoint> decode_checkpoint(std::span<const std::uint8_t> bytes,
                                     std::string_view name_for_errors) {
    if (bytes.size() > limits::kMaxCheckpointBytes)
        return fail(ErrorCode::too_large, name_for_errors,
                    std::to_string(bytes.size()) + " bytes, over the limit of " +
                        std::to_string(limits::kMaxCheckpointBytes));
    const auto payload =
        open_envelope(bytes, kCheckpointKind, kCheckpointFormatVersion, name_for_errors);
    if (!payload) return payload.error();
    std::vector<std::uint64_t> storage;
    const auto root = verify(aligned_view(*payload, storage), name_for_errors);
    if (!root) return root.error();
    auto checkpoint = from_wire(**root, name_for_errors);
    if (!checkpoint) return checkpoint.error();
    if (auto s = validate(*checkpoint, ErrorCode::malformed, name_for_errors); !s) return s.error();
    return checkpoint;
}

Status save_checkpoint(const std::filesystem::path& file, const Checkpoint& checkpoint) {
    const auto bytes = encode(checkpoint, file.string());
    if (!bytes) return bytes.error();
    DurableOptions options;
    options.keep_previous = true;
    return write_file_durably(file, *bytes, options);
}

Result<Checkpoint> load_checkpoint(const std::filesystem::path& file) {
    const auto bytes = read_file_bounded(file, limits::kMaxCheckpointBytes);
    if (!bytes) return bytes.error();
    return decode_checkpoint(*bytes, file.string());
}

}  // namespace starling::model
