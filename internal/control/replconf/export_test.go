package replconf

// SetHook makes m call f between the steps of its multi-step operations
// (crash tests stop or copy the durable state there).
func (m *Manager) SetHook(f func(step, id string)) { m.hook = f }

// SetFault makes m's operations fail with f's error at the steps where
// f returns one (fault).
func (m *Manager) SetFault(f func(step, id string) error) { m.faultHook = f }

// The peer calls' request bodies (FuzzPeerCalls seeds them with real
// encodings).
type (
	CreateDestReq = createDestReq
	DeleteReq     = deleteReq
	DeletedReq    = deletedReq
)

const (
	CallCreateDestination   = callCreateDestination
	CallExistingDestination = callExistingDestination
	CallDelete              = callDelete
	CallDeleted             = callDeleted
	CallPing                = callPing
)
