"""The stages of CyCADA, one keras.Model subclass each: source/target task model (Eq. 1), pixel adaptation
(Eq. 2-4), feature adaptation (Eq. 5)."""
