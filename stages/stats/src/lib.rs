//! Statistics as rliable defines them: normalized scores, IQM, stratified bootstrap CIs, profiles.
