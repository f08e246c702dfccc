//! A regulator's review of a break-glass access: its finding, justified or not, signed with
//! the regulator's key and recorded on the ledger, where the patient's history shows it.

use cradle_ledger::Digest32;
use cradle_ledger::tx::{ReviewAccess, ReviewDecision, TxBody};

use super::{ClientError, Receipt, Session};

impl Session {
    /// Records `decision` on the break-glass access recorded by transaction `entry`. The ledger
    /// refuses anyone but a regulator, an entry that is no break-glass access, and a second
    /// review of one.
    pub fn review_break_glass(
        &self,
        entry: Digest32,
        decision: ReviewDecision,
    ) -> Result<Receipt, ClientError> {
        self.submit(TxBody::ReviewAccess(ReviewAccess { entry, decision }))
    }
}
