// The xenchan Go SDK (README.md). Built offline against Debian's Go
// libraries through vendor/, whose entries are symbolic links into
// /usr/share/gocode/src (see README.md, "How it builds offline"); the
// versions below are the Debian 12 packages'.
module xenchan.dev/go

go 1.19

require (
	github.com/golang/protobuf v1.5.2
	google.golang.org/genproto v0.0.0-20200413115906-b5235f65be36
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)

require (
	golang.org/x/net v0.7.0 // indirect
	golang.org/x/sys v0.3.0 // indirect
	golang.org/x/text v0.7.0 // indirect
)
