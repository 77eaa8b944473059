package rpc

import (
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// Message types.
const (
	Call  = 0
	Reply = 1
)

// Version is the only RPC protocol version (RFC 5531).
const Version = 2

// Reply status.
const (
	MsgAccepted = 0
	MsgDenied   = 1
)

// AcceptStat is the status of an accepted call.
type AcceptStat uint32

// Accept statuses.
const (
	Success      AcceptStat = 0 // executed successfully
	ProgUnavail  AcceptStat = 1 // remote has not exported the program
	ProgMismatch AcceptStat = 2 // remote cannot support the version
	ProcUnavail  AcceptStat = 3 // program cannot support the procedure
	GarbageArgs  AcceptStat = 4 // procedure cannot decode the parameters
	SystemErr    AcceptStat = 5 // memory allocation failure, etc.
)

func (s AcceptStat) String() string {
	switch s {
	case Success:
		return "SUCCESS"
	case ProgUnavail:
		return "PROG_UNAVAIL"
	case ProgMismatch:
		return "PROG_MISMATCH"
	case ProcUnavail:
		return "PROC_UNAVAIL"
	case GarbageArgs:
		return "GARBAGE_ARGS"
	case SystemErr:
		return "SYSTEM_ERR"
	}
	return fmt.Sprintf("accept_stat(%d)", uint32(s))
}

// Reject statuses.
const (
	RPCMismatch = 0
	AuthError   = 1
)

// AuthStat is why a call's authentication failed.
type AuthStat uint32

// Authentication statuses.
const (
	AuthOK           AuthStat = 0
	AuthBadCred      AuthStat = 1 // bad credential (seal broken)
	AuthRejectedCred AuthStat = 2 // client must begin a new session
	AuthBadVerf      AuthStat = 3 // bad verifier (seal broken)
	AuthRejectedVerf AuthStat = 4 // verifier expired or replayed
	AuthTooWeak      AuthStat = 5 // rejected for security reasons
)

func (s AuthStat) String() string {
	switch s {
	case AuthOK:
		return "AUTH_OK"
	case AuthBadCred:
		return "AUTH_BADCRED"
	case AuthRejectedCred:
		return "AUTH_REJECTEDCRED"
	case AuthBadVerf:
		return "AUTH_BADVERF"
	case AuthRejectedVerf:
		return "AUTH_REJECTEDVERF"
	case AuthTooWeak:
		return "AUTH_TOOWEAK"
	}
	return fmt.Sprintf("auth_stat(%d)", uint32(s))
}

// Authentication flavors.
const (
	AuthNone = 0
	AuthUnix = 1 // AUTH_SYS
	// AuthTLS is RFC 9289's probe flavor: a NULL call with it asks the
	// server to start TLS on the connection; the reply's verifier is
	// AUTH_NONE with the body StartTLS.
	AuthTLS = 7
)

// StartTLS is the verifier body of a reply accepting an AUTH_TLS probe.
const StartTLS = "STARTTLS"

// AppendStartTLS appends a complete reply to an AUTH_TLS probe: accepted,
// SUCCESS, with the STARTTLS verifier (RFC 9289 section 4.1).
func AppendStartTLS(e *xdr.Encoder, xid uint32) {
	e.Uint32(xid)
	e.Uint32(Reply)
	e.Uint32(MsgAccepted)
	e.Uint32(AuthNone)
	e.Opaque([]byte(StartTLS))
	e.Uint32(uint32(Success))
}

// ParseReplyVerifier returns the verifier of an accepted reply (for the
// AUTH_TLS probe); ok is false for anything else.
func ParseReplyVerifier(msg []byte) (OpaqueAuth, bool) {
	d := xdr.NewDecoder(msg)
	d.Uint32()
	mt, rs := d.Uint32(), d.Uint32()
	v := decodeAuth(d)
	st := d.Uint32()
	if d.Err() != nil || mt != Reply || rs != MsgAccepted || AcceptStat(st) != Success {
		return OpaqueAuth{}, false
	}
	return v, true
}

// MaxAuthBytes bounds the body of a credential or verifier.
const MaxAuthBytes = 400

// Limits of an AUTH_UNIX credential (RFC 5531 appendix A).
const (
	MaxMachineName = 255
	MaxGroups      = 16
)

// Decoding errors.
var (
	// ErrGarbage: the message cannot be parsed.
	ErrGarbage = errors.New("rpc: malformed message")
	// ErrRPCVersion: the call is not RPC version 2 (answer RPC_MISMATCH).
	ErrRPCVersion = errors.New("rpc: unsupported RPC version")
	// ErrBadCred: the credential is malformed (answer AUTH_ERROR
	// AUTH_BADCRED).
	ErrBadCred = errors.New("rpc: malformed credential")
	// ErrNotCall: the message is a reply where a call was expected.
	ErrNotCall = errors.New("rpc: not a call")
)

// OpaqueAuth is a credential or verifier.
type OpaqueAuth struct {
	Flavor uint32
	Body   []byte
}

// Encode appends the auth.
func (a OpaqueAuth) Encode(e *xdr.Encoder) {
	e.Uint32(a.Flavor)
	e.Opaque(a.Body)
}

func decodeAuth(d *xdr.Decoder) OpaqueAuth {
	return OpaqueAuth{Flavor: d.Uint32(), Body: d.Opaque(MaxAuthBytes)}
}

// UnixCred is an AUTH_UNIX credential body.
type UnixCred struct {
	Stamp       uint32
	MachineName string
	UID, GID    uint32
	GIDs        []uint32
}

// Auth returns the credential as an opaque auth.
func (c UnixCred) Auth() OpaqueAuth {
	e := xdr.NewEncoder(nil)
	e.Uint32(c.Stamp)
	e.String(c.MachineName)
	e.Uint32(c.UID)
	e.Uint32(c.GID)
	e.Uint32(uint32(len(c.GIDs)))
	for _, g := range c.GIDs {
		e.Uint32(g)
	}
	return OpaqueAuth{Flavor: AuthUnix, Body: e.Bytes()}
}

// ParseUnixCred decodes an AUTH_UNIX body: a machine name of at most 255
// bytes and at most 16 groups, with nothing left over.
func ParseUnixCred(body []byte) (UnixCred, error) {
	d := xdr.NewDecoder(body)
	var c UnixCred
	c.Stamp = d.Uint32()
	c.MachineName = d.String(MaxMachineName)
	c.UID = d.Uint32()
	c.GID = d.Uint32()
	n := d.Count(MaxGroups, 4)
	if n > 0 {
		c.GIDs = make([]uint32, n)
		for i := range c.GIDs {
			c.GIDs[i] = d.Uint32()
		}
	}
	if err := d.Done(); err != nil {
		return UnixCred{}, fmt.Errorf("%w: auth_unix: %v", ErrBadCred, err)
	}
	return c, nil
}

// CallHeader is the header of a call message; the procedure's arguments
// follow it.
type CallHeader struct {
	XID  uint32
	Prog uint32
	Vers uint32
	Proc uint32
	Cred OpaqueAuth
	Verf OpaqueAuth
}

// Encode appends a call header.
func (h *CallHeader) Encode(e *xdr.Encoder) {
	e.Uint32(h.XID)
	e.Uint32(Call)
	e.Uint32(Version)
	e.Uint32(h.Prog)
	e.Uint32(h.Vers)
	e.Uint32(h.Proc)
	h.Cred.Encode(e)
	h.Verf.Encode(e)
}

// ParseCall decodes a call header and returns the arguments that follow
// (aliasing msg). On ErrRPCVersion the XID is valid (to answer
// RPC_MISMATCH). On other errors the XID is valid when the message held
// at least one.
func ParseCall(msg []byte) (CallHeader, []byte, error) {
	d := xdr.NewDecoder(msg)
	var h CallHeader
	h.XID = d.Uint32()
	mt := d.Uint32()
	if d.Err() != nil {
		return h, nil, fmt.Errorf("%w: %v", ErrGarbage, d.Err())
	}
	if mt != Call {
		return h, nil, fmt.Errorf("%w: message type %d", ErrNotCall, mt)
	}
	if v := d.Uint32(); d.Err() == nil && v != Version {
		return h, nil, fmt.Errorf("%w: %d", ErrRPCVersion, v)
	}
	h.Prog = d.Uint32()
	h.Vers = d.Uint32()
	h.Proc = d.Uint32()
	h.Cred = decodeAuth(d)
	h.Verf = decodeAuth(d)
	if err := d.Err(); err != nil {
		if errors.Is(err, xdr.ErrTooLong) {
			return h, nil, fmt.Errorf("%w: %v", ErrBadCred, err)
		}
		return h, nil, fmt.Errorf("%w: %v", ErrGarbage, err)
	}
	return h, d.Rest(), nil
}

// Reply header encoding.

// AppendAccepted appends an accepted reply header with the given status
// and an AUTH_NONE verifier; for Success the results follow, for
// ProgMismatch the caller appends the version range with
// AppendMismatchInfo.
func AppendAccepted(e *xdr.Encoder, xid uint32, stat AcceptStat) {
	e.Uint32(xid)
	e.Uint32(Reply)
	e.Uint32(MsgAccepted)
	e.Uint32(AuthNone)
	e.Uint32(0)
	e.Uint32(uint32(stat))
}

// AppendMismatchInfo appends the supported version range of a
// PROG_MISMATCH or RPC_MISMATCH reply.
func AppendMismatchInfo(e *xdr.Encoder, low, high uint32) {
	e.Uint32(low)
	e.Uint32(high)
}

// AppendRPCMismatch appends a complete RPC_MISMATCH reply.
func AppendRPCMismatch(e *xdr.Encoder, xid uint32) {
	e.Uint32(xid)
	e.Uint32(Reply)
	e.Uint32(MsgDenied)
	e.Uint32(RPCMismatch)
	AppendMismatchInfo(e, Version, Version)
}

// AppendAuthError appends a complete AUTH_ERROR reply.
func AppendAuthError(e *xdr.Encoder, xid uint32, stat AuthStat) {
	e.Uint32(xid)
	e.Uint32(Reply)
	e.Uint32(MsgDenied)
	e.Uint32(AuthError)
	e.Uint32(uint32(stat))
}

// ReplyError is a reply that carries no results: a denied call or an
// accepted one whose status is not Success.
type ReplyError struct {
	Accepted   bool
	AcceptStat AcceptStat // when Accepted
	AuthStat   AuthStat   // when denied with AUTH_ERROR
	Mismatch   bool       // denied with RPC_MISMATCH
	Low, High  uint32     // version range of PROG_MISMATCH / RPC_MISMATCH
}

func (e *ReplyError) Error() string {
	switch {
	case e.Accepted && e.AcceptStat == ProgMismatch:
		return fmt.Sprintf("rpc: %v (versions %d-%d)", e.AcceptStat, e.Low, e.High)
	case e.Accepted:
		return "rpc: " + e.AcceptStat.String()
	case e.Mismatch:
		return fmt.Sprintf("rpc: RPC_MISMATCH (versions %d-%d)", e.Low, e.High)
	default:
		return "rpc: AUTH_ERROR " + e.AuthStat.String()
	}
}

// ParseReply decodes a reply header. It returns the XID and, for a
// successful call, the results that follow (aliasing msg); any other
// reply is a *ReplyError. Malformed replies wrap ErrGarbage.
func ParseReply(msg []byte) (uint32, []byte, error) {
	d := xdr.NewDecoder(msg)
	xid := d.Uint32()
	mt := d.Uint32()
	rs := d.Uint32()
	if d.Err() != nil {
		return xid, nil, fmt.Errorf("%w: %v", ErrGarbage, d.Err())
	}
	if mt != Reply {
		return xid, nil, fmt.Errorf("%w: message type %d is not a reply", ErrGarbage, mt)
	}
	switch rs {
	case MsgAccepted:
		decodeAuth(d)
		st := AcceptStat(d.Uint32())
		if d.Err() != nil {
			return xid, nil, fmt.Errorf("%w: %v", ErrGarbage, d.Err())
		}
		switch st {
		case Success:
			return xid, d.Rest(), nil
		case ProgMismatch:
			re := &ReplyError{Accepted: true, AcceptStat: st, Low: d.Uint32(), High: d.Uint32()}
			if d.Err() != nil {
				return xid, nil, fmt.Errorf("%w: %v", ErrGarbage, d.Err())
			}
			return xid, nil, re
		default:
			return xid, nil, &ReplyError{Accepted: true, AcceptStat: st}
		}
	case MsgDenied:
		switch d.Uint32() {
		case RPCMismatch:
			re := &ReplyError{Mismatch: true, Low: d.Uint32(), High: d.Uint32()}
			if d.Err() != nil {
				return xid, nil, fmt.Errorf("%w: %v", ErrGarbage, d.Err())
			}
			return xid, nil, re
		case AuthError:
			re := &ReplyError{AuthStat: AuthStat(d.Uint32())}
			if d.Err() != nil {
				return xid, nil, fmt.Errorf("%w: %v", ErrGarbage, d.Err())
			}
			return xid, nil, re
		}
	}
	return xid, nil, fmt.Errorf("%w: reply status %d", ErrGarbage, rs)
}
