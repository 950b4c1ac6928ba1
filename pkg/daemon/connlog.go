package daemon

import (
	"fmt"
	"io"
	"os"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/logging"
)

// The connection log's destination: log.connections_file, reopened on
// SIGUSR1 and at every reload (logrotate renames the file, then signals),
// or the daemon's own log.

// openConnLog opens cfg's connections_file; nil when the connection log
// goes to the daemon's log.
func openConnLog(cfg *config.Config) (*logging.File, error) {
	if cfg.Log.ConnectionsFile == "" {
		return nil, nil
	}
	f, err := logging.OpenFile(cfg.Log.ConnectionsFile)
	if err != nil {
		return nil, fmt.Errorf("log.connections_file: %w", err)
	}
	return f, nil
}

// connLogOutput is the data plane's connection log output: file, which
// the data plane closes once it writes to it no more, or the daemon's log.
func (d *Daemon) connLogOutput(file *logging.File) l4.LogOutput {
	if file != nil {
		return l4.LogOutput{W: file, Closer: file}
	}
	var w io.Writer = os.Stderr
	if out := d.opts.LogOutput; out != nil {
		w = out.Destination()
	}
	return l4.LogOutput{W: w, Shared: true}
}

// prepareConnLog opens the connections_file of a config that moves it.
func (tx *reloadTx) prepareConnLog() error {
	if tx.cfg.Log.ConnectionsFile == tx.old.Log.ConnectionsFile {
		return nil
	}
	f, err := openConnLog(tx.cfg)
	if err != nil {
		return err
	}
	tx.connFile, tx.moveConnLog = f, true
	return nil
}

// commitConnLog applies [log] to the connection log: its format, and
// either the file prepareConnLog opened or, for the same file, a reopen.
func (tx *reloadTx) commitConnLog() {
	d := tx.d
	d.srv.SetLogFormat(tx.cfg.Log.Format)
	if tx.moveConnLog {
		d.srv.SetLogOutput(d.connLogOutput(tx.connFile))
		d.connFile = tx.connFile
		return
	}
	d.reopenConnLog()
}

// abortConnLog closes the file prepareConnLog opened.
func (tx *reloadTx) abortConnLog() {
	if tx.connFile != nil {
		tx.connFile.Close()
	}
}

// ReopenLogs opens the connection log file again at its path, for a log
// rotation: what SIGUSR1 does (SIGHUP does it too, with a reload).
func (d *Daemon) ReopenLogs() {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	d.reopenConnLog()
}

// reopenConnLog reopens the connection log file, if it has one; the
// caller holds d.ctl. A failure leaves the old file in use.
func (d *Daemon) reopenConnLog() {
	f := d.connFile
	if f == nil {
		return
	}
	if err := f.Reopen(); err != nil {
		d.log.Error().Err(err).Str("connections_file", f.Path()).
			Msg("connection log: cannot reopen; writing on to the file already open")
		return
	}
	d.log.Info().Str("connections_file", f.Path()).Msg("connection log reopened")
}
