//! The daemon's HTTP face: the pages behind the links in its emails. Off the
//! scheduler's hot path; GET and HEAD only show, the POST from a shown form acts.

pub mod link;
