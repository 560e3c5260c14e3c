// What rides beside membership reaches the node here: the live members with their addresses,
// sealed datagrams to one of them, and datagrams of channels the node itself does not speak.

#include "node/runtime/node_impl.hpp"

namespace starling::runtime {

std::vector<LiveMember> Node::live_members() const {
    std::vector<LiveMember> live;
    for (const membership::MemberView& m : impl_->core.members()) {
        if (m.state != membership::MemberState::alive) continue;
        if (const auto address = to_endpoint(m.address)) live.push_back({m.id, *address});
    }
    return live;
}

void Node::send_to_member(const crypto::DeviceId& device, const net::Ipv4Endpoint& to,
                          std::span<const std::uint8_t> plaintext) {
    if (impl_->failed || !impl_->started) return;
    impl_->seal_and_send(to, device, plaintext);
}

void Node::on_other_channel(OtherChannelHandler handler) {
    impl_->other_channel = std::move(handler);
}

bool Node::is_revoked(const crypto::DeviceId& device) const { return impl_->peers.is_revoked(device); }

net::Ipv4Endpoint Node::advertised() const { return impl_->options.advertise; }

}  // namespace starling::runtime
