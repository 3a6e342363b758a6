// The reactors of ChannelService's calls that outlive their handler: each
// Start* makes one reactor object for the call, starts it and returns it to
// gRPC. One file per family:
//   create_delete_reactors.cc  CreateChannel, DeleteChannel (engine callbacks)
//   update_reactor.cc          UpdateChannel (engine callback)
//   watch_reactor.cc           WatchChannels (the lifecycle event log)
//   read_reactor.cc            Read (one observer session)
//   attach_reactor.cc          Attach (observer or writer, acknowledgements)
//   write_reactor.cc           Write (a client stream of bytes to the guest)
//   call_reactor.cc            Call (one framed request and its response)
// Shared machinery: reactor_base.h.
//
// Thread safety: callable from gRPC's threads.
#ifndef XENCHAN_SERVER_REACTORS_H_
#define XENCHAN_SERVER_REACTORS_H_

#include <memory>

#include "grpcpp/grpcpp.h"
#include "server/service_core.h"
#include "xenchan/v1/channel_service.grpc.pb.h"

namespace xenchan {
namespace server {

grpc::ServerUnaryReactor* StartCreateChannel(std::shared_ptr<ServiceCore> core,
                                             grpc::CallbackServerContext* context,
                                             const v1::CreateChannelRequest* request,
                                             v1::CreateChannelResponse* response);
grpc::ServerUnaryReactor* StartUpdateChannel(std::shared_ptr<ServiceCore> core,
                                             grpc::CallbackServerContext* context,
                                             const v1::UpdateChannelRequest* request,
                                             v1::UpdateChannelResponse* response);
grpc::ServerUnaryReactor* StartDeleteChannel(std::shared_ptr<ServiceCore> core,
                                             grpc::CallbackServerContext* context,
                                             const v1::DeleteChannelRequest* request,
                                             v1::DeleteChannelResponse* response);
grpc::ServerWriteReactor<v1::WatchChannelsResponse>* StartWatchChannels(
    std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
    const v1::WatchChannelsRequest* request);
grpc::ServerWriteReactor<v1::ReadResponse>* StartRead(std::shared_ptr<ServiceCore> core,
                                                      grpc::CallbackServerContext* context,
                                                      const v1::ReadRequest* request);
grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse>* StartAttach(
    std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context);
grpc::ServerReadReactor<v1::WriteRequest>* StartWrite(std::shared_ptr<ServiceCore> core,
                                                      grpc::CallbackServerContext* context,
                                                      v1::WriteResponse* response);
grpc::ServerUnaryReactor* StartCall(std::shared_ptr<ServiceCore> core,
                                    grpc::CallbackServerContext* context,
                                    const v1::CallRequest* request, v1::CallResponse* response);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_REACTORS_H_
